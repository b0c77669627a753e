/* web_assets.c: the files of web/ embedded into the binary for `attngan serve`.
 * The assembler reads them at build time (.incbin, paths relative to the repository root, where
 * make runs the compiler); the Makefile names them as prerequisites of this object, so editing
 * web/index.html rebuilds it. Each file is followed by a NUL byte that the _end symbol excludes. */

__asm__(".pushsection .rodata\n"
        ".balign 16\n"
        ".globl serve_index_html\n"
        ".type serve_index_html, @object\n"
        "serve_index_html:\n"
        ".incbin \"web/index.html\"\n"
        ".globl serve_index_html_end\n"
        ".type serve_index_html_end, @object\n"
        "serve_index_html_end:\n"
        ".byte 0\n"
        ".popsection\n");
