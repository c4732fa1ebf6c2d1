/* rounds.c - a thread-local variable of the program that counters.c uses
 * from another file (so through the initial-exec model). */
__thread int rounds;
