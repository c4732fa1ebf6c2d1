/* shared.h - a header beside the program's tree, not in it: main.c
 * includes it as "../common/shared.h" (build_includes.bats). */
#ifndef SHARED_H
#define SHARED_H

#define SHARED_SCALE 3

#endif
