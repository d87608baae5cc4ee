/* cmd_plot.c - placeholder while the real one is written. */
#include "cli_words.h"
int cmd_plot(int argc, char **argv) {
    (void)argc, (void)argv;
    return cli_error("plot: not yet");
}
