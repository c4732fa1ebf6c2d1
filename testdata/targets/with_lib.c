/* with_lib.c - calls demo_value() of libdemo.so every 5 ms.  Output lines:
 *   ready pid=PID
 *   demo N -> R        original: R = N + 7; the demo_lib_fix patch: R = N + 70 */
#include "target.h"

int demo_value(int value);

int main(void)
{
	target_start();
	printf("ready pid=%d\n", (int)getpid());
	for (int i = 1;; i++) {
		printf("demo %d -> %d\n", i, demo_value(i));
		sleep_ms(5);
	}
}
