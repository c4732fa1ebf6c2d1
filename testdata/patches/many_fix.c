/* many_fix - replaces all 64 functions of the many target (more than one
 * page of gates holds), each returning one more than the original.  One
 * FIX a line: HOTPATCH_REPLACE names its entry by the line. */
#include <hotpatch.h>

#include "../targets/many.h"

#define FIX(n)                                                                 \
	static unsigned long fix_##n(unsigned long x)                          \
	{                                                                      \
		return many_mix(x, 1##n - 100) + 1;                            \
	}                                                                      \
	HOTPATCH_REPLACE(many_##n, fix_##n)

FIX(00);
FIX(01);
FIX(02);
FIX(03);
FIX(04);
FIX(05);
FIX(06);
FIX(07);
FIX(08);
FIX(09);
FIX(10);
FIX(11);
FIX(12);
FIX(13);
FIX(14);
FIX(15);
FIX(16);
FIX(17);
FIX(18);
FIX(19);
FIX(20);
FIX(21);
FIX(22);
FIX(23);
FIX(24);
FIX(25);
FIX(26);
FIX(27);
FIX(28);
FIX(29);
FIX(30);
FIX(31);
FIX(32);
FIX(33);
FIX(34);
FIX(35);
FIX(36);
FIX(37);
FIX(38);
FIX(39);
FIX(40);
FIX(41);
FIX(42);
FIX(43);
FIX(44);
FIX(45);
FIX(46);
FIX(47);
FIX(48);
FIX(49);
FIX(50);
FIX(51);
FIX(52);
FIX(53);
FIX(54);
FIX(55);
FIX(56);
FIX(57);
FIX(58);
FIX(59);
FIX(60);
FIX(61);
FIX(62);
FIX(63);
