/* wikipedia.h: class-level Wikipedia documents of the CUB classes (the noisy-text zero-shot
 * setting of GAZSL / ZEST), from the layout
 *   articles/<class>.txt        one sentence a line, lower-cased and tokenised with spaces
 *   visual_labels/<class>.txt   one label a line for the sentence on the same line
 *                               (1, 0.5, 0, Other, Unlabelled)
 *   split_{easy,hard}_{train,test}.txt   1-based class ids, one a line
 * <class> is "001.Black_footed_Albatross": its number is the 1-based class id, and the ids of
 * the articles must be exactly 1..n. Errors name the file and line and the reason. */
#ifndef ATTNGAN_WIKIPEDIA_H
#define ATTNGAN_WIKIPEDIA_H

typedef enum {
    WIKI_LABEL_0,           /* "0": judged not visual */
    WIKI_LABEL_HALF,        /* "0.5" */
    WIKI_LABEL_1,           /* "1": visual */
    WIKI_LABEL_OTHER,       /* "Other" */
    WIKI_LABEL_UNLABELLED,  /* "Unlabelled" */
    WIKI_N_LABELS
} WikiLabel;

typedef enum { WIKI_EASY, WIKI_HARD } WikiSplitKind;  /* SCS ("easy") and SCE ("hard") splits */

typedef struct WikiClass {
    int id;               /* 1-based class id */
    char *name;           /* "001.Black_footed_Albatross" */
    char **sentences;     /* n sentences */
    WikiLabel *labels;    /* the label of each sentence */
    int n;
} WikiClass;

typedef struct WikiSplit {
    int *train, *test;    /* class ids in file order */
    int n_train, n_test;
} WikiSplit;

typedef struct Wiki {
    char *root;
    WikiClass *classes;   /* classes[id - 1] */
    int n_classes;
    int n_sentences;      /* over all classes */
    WikiSplit easy, hard;
} Wiki;

/* Reads the whole layout under root (e.g. ../shared/data/wikipedia). 0, or -1 with err_msg()
 * (w is then empty and needs no wiki_close). */
int wiki_open(Wiki *w, const char *root);
void wiki_close(Wiki *w);

/* The class with this id, or NULL with err_msg() when there is none. */
const WikiClass *wiki_class(const Wiki *w, int class_id);
/* The id of the class named name ("001.Black_footed_Albatross"), or -1 with err_msg(). */
int wiki_find_class(const Wiki *w, const char *name);
/* Sentences and their labels: the count, or -1 with err_msg() for an unknown class. */
int wiki_sentences(const Wiki *w, int class_id, char *const **sentences);
int wiki_labels(const Wiki *w, int class_id, const WikiLabel **labels);
/* The class's document: its sentences joined by single spaces (malloc'ed; NULL with err_msg()). */
char *wiki_document(const Wiki *w, int class_id);
/* The sentences labelled 0 (not visual), in order: the count, *out a malloc'ed array of
 * pointers into the class (free the array only); -1 with err_msg() for an unknown class. */
int wiki_non_visual(const Wiki *w, int class_id, const char ***out);
/* The class ids of a split's train (test = 0) or test (test = 1) part: the count, or -1. */
int wiki_split(const Wiki *w, WikiSplitKind kind, int test, const int **ids);
const char *wiki_label_name(WikiLabel label);

#endif
