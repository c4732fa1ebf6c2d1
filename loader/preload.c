/* preload.c - libhotpatch-loader.so, preloaded into every process started
 * later (LD_PRELOAD or /etc/ld.so.preload): applies the installed patches
 * that fit the process before main runs, and a library's when it is
 * dlopen'ed.  It links only libc, so that a process nothing fits pays for
 * one failed open; the work is done by libhotpatch-apply.so, loaded beside
 * it only when a patch fits. */

__attribute__((constructor)) static void loader_start(void)
{
}
