/* gpt2in-shard - `gpt2in shard` as a program of its own: only it links the
 * libraries shard needs (sha256, zlib, zstd, simdjson, the C++ runtime), so
 * every other command starts without loading them. `gpt2in shard ARGS`
 * runs this with the same ARGS (tools/gpt2in.c); run directly, it takes
 * them too. */
#include "cli.h"

int main(int argc, char **argv) {
    cli_start();
    argv[0] = "shard";  /* the command's name in its messages, as under gpt2in */
    return cli_finish(cmd_shard(argc, argv));
}
