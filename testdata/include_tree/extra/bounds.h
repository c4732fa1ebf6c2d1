/* bounds.h - a header found through the compile command's -I../extra,
 * outside the program's tree (build_includes.bats). */
#ifndef BOUNDS_H
#define BOUNDS_H

#define BOUND_LIMIT 50

#endif
