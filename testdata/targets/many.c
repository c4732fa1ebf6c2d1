/* many.c - 64 functions, more than one page of gates holds (40), all
 * called by W worker threads (argv[1], default 4) in rounds, each round
 * every function in order.  Each call returns many_mix(x, n) (the original)
 * or one more (the many_fix patch).  A worker's round is old, new or torn:
 * torn when the version changed more than once within it, which no switch
 * of the thread's own (all its functions at once) can make.  Output every
 * 20 ms:
 *   ready pid=PID
 *   many workers=W old=A new=B other=C torn=T rounds=R
 * A and B count the workers whose last round was wholly old or new, C those
 * with a value that is neither; T counts every torn round so far. */
#include <pthread.h>
#include <stdatomic.h>

#include "many.h"
#include "target.h"

#define MAX_WORKERS 64

typedef unsigned long (*many_fn)(unsigned long);

/* noipa: every call goes through the entry a patch redirects. */
#define MANY(n)                                                                \
	__attribute__((noipa)) unsigned long many_##n(unsigned long x);        \
	__attribute__((noipa)) unsigned long many_##n(unsigned long x)         \
	{                                                                      \
		return many_mix(x, 1##n - 100);                                \
	}

MANY(00)
MANY(01)
MANY(02)
MANY(03)
MANY(04)
MANY(05)
MANY(06)
MANY(07)
MANY(08)
MANY(09)
MANY(10)
MANY(11)
MANY(12)
MANY(13)
MANY(14)
MANY(15)
MANY(16)
MANY(17)
MANY(18)
MANY(19)
MANY(20)
MANY(21)
MANY(22)
MANY(23)
MANY(24)
MANY(25)
MANY(26)
MANY(27)
MANY(28)
MANY(29)
MANY(30)
MANY(31)
MANY(32)
MANY(33)
MANY(34)
MANY(35)
MANY(36)
MANY(37)
MANY(38)
MANY(39)
MANY(40)
MANY(41)
MANY(42)
MANY(43)
MANY(44)
MANY(45)
MANY(46)
MANY(47)
MANY(48)
MANY(49)
MANY(50)
MANY(51)
MANY(52)
MANY(53)
MANY(54)
MANY(55)
MANY(56)
MANY(57)
MANY(58)
MANY(59)
MANY(60)
MANY(61)
MANY(62)
MANY(63)

static const many_fn functions[MANY_COUNT] = {
	many_00,
	many_01,
	many_02,
	many_03,
	many_04,
	many_05,
	many_06,
	many_07,
	many_08,
	many_09,
	many_10,
	many_11,
	many_12,
	many_13,
	many_14,
	many_15,
	many_16,
	many_17,
	many_18,
	many_19,
	many_20,
	many_21,
	many_22,
	many_23,
	many_24,
	many_25,
	many_26,
	many_27,
	many_28,
	many_29,
	many_30,
	many_31,
	many_32,
	many_33,
	many_34,
	many_35,
	many_36,
	many_37,
	many_38,
	many_39,
	many_40,
	many_41,
	many_42,
	many_43,
	many_44,
	many_45,
	many_46,
	many_47,
	many_48,
	many_49,
	many_50,
	many_51,
	many_52,
	many_53,
	many_54,
	many_55,
	many_56,
	many_57,
	many_58,
	many_59,
	many_60,
	many_61,
	many_62,
	many_63,
};

enum { OLD = 1, NEW = 2, OTHER = 3 };

static atomic_int last_round[MAX_WORKERS];
static atomic_ulong torn, rounds;

/* One round: every function once; the version of each call, and how many
 * times it changed along the round. */
static int one_round(unsigned long x)
{
	int round_version = 0, previous = 0, changes = 0;

	for (unsigned long n = 0; n < MANY_COUNT; n++) {
		unsigned long value = functions[n](x), expected = many_mix(x, n);
		int version = value == expected ? OLD : value == expected + 1 ? NEW : OTHER;

		if (version == OTHER)
			round_version = OTHER;
		if (previous && version != previous)
			changes++;
		previous = version;
	}
	if (changes > 1)
		atomic_fetch_add(&torn, 1);
	atomic_fetch_add(&rounds, 1);
	return round_version ? round_version : changes ? 0 : previous;
}

static void *work(void *argument)
{
	int index = (int)(long)argument;

	for (unsigned long x = (unsigned long)index;; x += 7919) {
		int version = one_round(x);

		if (version)
			atomic_store(&last_round[index], version);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int count = argc > 1 ? atoi(argv[1]) : 4;

	target_start();
	if (count < 1 || count > MAX_WORKERS) {
		fprintf(stderr, "many: 1 to %d workers\n", MAX_WORKERS);
		return 2;
	}
	for (int i = 0; i < count; i++) {
		pthread_t thread;

		if (pthread_create(&thread, NULL, work, (void *)(long)i) != 0) {
			fprintf(stderr, "many: pthread_create failed\n");
			return 1;
		}
	}
	printf("ready pid=%d\n", (int)getpid());
	for (;;) {
		int old = 0, new = 0, other = 0;

		sleep_ms(20);
		for (int i = 0; i < count; i++) {
			int version = atomic_load(&last_round[i]);

			old += version == OLD;
			new += version == NEW;
			other += version == OTHER;
		}
		printf("many workers=%d old=%d new=%d other=%d torn=%lu rounds=%lu\n", count, old,
		       new, other, atomic_load(&torn), atomic_load(&rounds));
	}
}
