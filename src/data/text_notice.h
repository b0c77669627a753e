/* text_notice.h: what the command line tells a user about text the tokenizer changes.
 *
 * AttnGAN's tokenizer keeps only the ASCII characters of each word (text.h), so a letter outside
 * ASCII vanishes inside its word: "weißen" becomes "weien", "café" becomes "caf". The model keeps
 * that behaviour (its vocabulary was built so); these helpers let `generate` and `examples` say
 * which words were changed, and reject text that is not UTF-8, as the server does. */
#ifndef ATTNGAN_TEXT_NOTICE_H
#define ATTNGAN_TEXT_NOTICE_H

#include <stddef.h>

/* The byte offset of the first invalid UTF-8 sequence of s (overlongs, surrogates and code points
 * over U+10FFFF are invalid), or -1 when s is valid. */
long text_utf8_invalid_at(const char *s);

/* The words of text (runs between ASCII spaces and punctuation) that lose letters in the
 * tokenizer, each as "weißen -> weien" (its tokens, space-separated, or "(dropped)" when nothing is
 * left), comma-separated; NULL when there are none. malloc'ed. Expects valid UTF-8. */
char *text_changed_words(const char *text);

#endif
