/* service.h - a small service that the tests of `hotpatch build` patch from
 * source diffs (testdata/diffs).  Its four files keep the kinds of state a
 * real fix runs into: a file-local table the service changes as it runs
 * (slots.c), a file-local helper with a counter (requests.c), a static inline
 * function inlined into two callers and a global table (levels.c), two
 * file-local functions with the same name (check, in slots.c and requests.c),
 * and a caller that relies on its callee's register use (audit.c). */
#ifndef SERVICE_H
#define SERVICE_H

/* The smallest request: a header of this many bytes. */
#define REQUEST_HEADER 4
/* The largest request the buffers hold. */
#define REQUEST_MAX 4096

/* slots.c: a table of slots, each counting its hits. */
void slots_tick(void);
long slot_hits(int index);

/* requests.c: requests of a size, accepted (the size) or rejected (-1). */
int handle_request(int size);
int request_capacity(void);
void requests_report(long *empty, long *too_large, long *checks, int *last);

/* audit.c: the size audited before, plus base * count. */
long audit_request(long size, long base, long count);

/* levels.c: levels from 0 to 100 and the weight of a level. */
extern int level_weights[4];
int load_level(int percent);
int queue_level(int depth);
int level_ceiling(void);
int progress_level(unsigned char percent);
int level_weight(int level);

/* main.c */
extern long service_ticks;

#endif /* SERVICE_H */
