/* The GPT-2 vocabulary image built by bpe_gen, embedded as read-only data. */
    .section .rodata
    .balign 64
    .globl bpe_gpt2_image
    .hidden bpe_gpt2_image
    .type bpe_gpt2_image, @object
bpe_gpt2_image:
    .incbin IMAGE
    .size bpe_gpt2_image, . - bpe_gpt2_image
    .section .note.GNU-stack,"",@progbits
