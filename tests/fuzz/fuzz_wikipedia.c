/* fuzz_wikipedia: the Wikipedia class documents (src/data/wikipedia.c: articles/, visual_labels/,
 * the split files). The input is a directory tree packed as fuzz.h describes, unpacked into a
 * scratch directory and opened with wiki_open; on success every class's document, labels and
 * non-visual sentences are read, and both splits. */
#include "fuzz.h"
#include "../../src/data/wikipedia.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *root = fuzz_unpack_tree(data, size);
    Wiki w;
    if (wiki_open(&w, root) != 0) return 0;
    for (int id = 1; id <= w.n_classes; id++) {
        const WikiClass *c = wiki_class(&w, id);
        if (!c || c->id != id || wiki_find_class(&w, c->name) != id) abort();
        free(wiki_document(&w, id));
        const char **nv;
        int n = wiki_non_visual(&w, id, &nv);
        if (n < 0) abort();
        free(nv);
        const WikiLabel *labels;
        if (wiki_labels(&w, id, &labels) != c->n) abort();
        for (int i = 0; i < c->n; i++)
            if ((int)labels[i] < 0 || labels[i] >= WIKI_N_LABELS) abort();
    }
    for (int kind = 0; kind < 2; kind++)
        for (int test = 0; test < 2; test++) {
            const int *ids;
            int n = wiki_split(&w, (WikiSplitKind)kind, test, &ids);
            for (int i = 0; i < n; i++)
                if (!wiki_class(&w, ids[i])) abort();
        }
    wiki_close(&w);
    return 0;
}
