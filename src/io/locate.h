/* locate.h: where attngan finds the files it ships with and the data, when a flag does not name
 * them. One search order for every command (generate, examples, sample, serve, eval, export):
 *
 *   model      --model DIR,      $ATTNGAN_MODEL,     then models/bird64 in the places below
 *   evaluator  --evaluator DIR,  $ATTNGAN_EVALUATOR, then models/eval
 *   trunk      --inception PATH, $ATTNGAN_INCEPTION, the evaluator config's EXTRA.INCEPTION_WEIGHTS
 *              when absolute, then models/<its last component> (inception_v3_nsfwjs)
 *   captions   --captions FILE,  (none),              then examples/captions.txt
 *
 * The places, in order: next to the binary (EXE/models/bird64), the installed share directory
 * (EXE/../share/attngan/models/bird64, which `make install PREFIX=P` fills for P/bin/attngan),
 * the repository the binary was built in (EXE/../../models/bird64 for build/release/attngan; for the
 * trunk: the configured relative path from there), and last the working directory (models/bird64;
 * for the trunk the configured path as written). A flag or variable is used as given (an error
 * when it does not exist); a place counts when it holds the resource (model.json or config.json,
 * config.json, the trunk's path, the file). "Not found" errors list every path tried and the flag
 * that fixes it.
 *
 * The data directory (AttnGAN's data/birds) has one rule: --data DIR, else $ATTNGAN_DATA/birds,
 * else the configuration's DATA_DIR (the --cfg file's, a resumed checkpoint's, the evaluator's
 * or the model's), else ../shared/data/birds. */
#ifndef ATTNGAN_LOCATE_H
#define ATTNGAN_LOCATE_H

#include <stddef.h>

#define LOCATE_DEFAULT_DATA "../shared/data/birds"

typedef enum { LOCATE_MODEL, LOCATE_EVALUATOR, LOCATE_CAPTIONS } LocateKind;

/* The directory of the running binary (from /proc/self/exe), "" when unknown. */
const char *locate_exe_dir(void);
/* Tests: pretend the binary lives in dir (NULL: the real one). */
void locate_set_exe_dir(const char *dir);

/* The model, evaluator or example captions: flag (NULL when not given), else the environment
 * variable, else the places above. 0 with the path in out, or -1 with err_msg() naming every
 * path tried and the flag. */
int locate_resource(LocateKind kind, const char *flag, char *out, size_t len);

/* The evaluator's Inception trunk: flag (--inception), $ATTNGAN_INCEPTION, then `configured` (its
 * config's EXTRA.INCEPTION_WEIGHTS) as described above. */
int locate_trunk(const char *flag, const char *configured, char *out, size_t len);

/* The data directory by the rule above. configured: the configuration's DATA_DIR ("" or NULL: none),
 * from: where that came from ("cfg/bird_attn2.yml", "the evaluator models/eval", ...). 0 with the
 * directory in out and, if source is not NULL, a few words on where it came from in source; -1
 * when the chosen directory does not exist, with err_msg() naming it, its source, and --data /
 * ATTNGAN_DATA. */
int locate_data(const char *flag, const char *configured, const char *from, char *out, size_t len, char *source, size_t slen);

/* What to tell a user whose data directory could not be read: "give --data DIR ...". */
const char *locate_data_hint(void);

#endif
