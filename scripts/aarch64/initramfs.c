/* initramfs.c - /init of the arm64 test machine's initramfs (built static
 * by scripts/aarch64/rootfs, beside the kernel modules it loads).  Debian's
 * own initramfs would do the same, but building it under qemu-user takes
 * minutes and booting it under TCG seconds; this loads the modules listed
 * in /modules (dependencies first), mounts /dev/vda (ext4) and hands over to
 * the root file system's /sbin/hotpatch-init.  Any failure says which step
 * failed and stops (the kernel then panics and, with panic=-1 and qemu's
 * -no-reboot, the machine ends). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define ROOT_DEVICE "/dev/vda"
#define NEW_ROOT "/root"
#define NEXT_INIT "/sbin/hotpatch-init"
#define DEVICE_WAIT_TRIES 500 /* 10 ms each */

static int failed(const char *step, const char *what)
{
	fprintf(stderr, "initramfs: %s %s: %s\n", step, what, strerror(errno));
	return 1;
}

/* Loads each module named in the list file, one path a line. */
static int load_modules(const char *list_path)
{
	char line[256];
	FILE *list = fopen(list_path, "r");
	int status = 0;

	if (list == NULL)
		return failed("open", list_path);
	while (status == 0 && fgets(line, sizeof(line), list) != NULL) {
		int fd;

		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '\0')
			continue;
		fd = open(line, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			status = failed("open", line);
			break;
		}
		if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST)
			status = failed("load module", line);
		close(fd);
	}
	fclose(list);
	return status;
}

/* The disk appears once virtio_blk has probed it, shortly after loading. */
static int wait_for_device(const char *path)
{
	struct timespec pause = {0, 10 * 1000 * 1000};
	struct stat info;
	int try;

	for (try = 0; try < DEVICE_WAIT_TRIES; try++) {
		if (stat(path, &info) == 0)
			return 0;
		nanosleep(&pause, NULL);
	}
	return failed("wait for", path);
}

int main(void)
{
	char *const argv[] = {NEXT_INIT, NULL};

	if (mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) != 0)
		return failed("mount", "/dev");
	if (mount("proc", "/proc", "proc", 0, NULL) != 0)
		return failed("mount", "/proc");
	if (load_modules("/modules") != 0 || wait_for_device(ROOT_DEVICE) != 0)
		return 1;
	if (mount(ROOT_DEVICE, NEW_ROOT, "ext4", 0, NULL) != 0)
		return failed("mount", ROOT_DEVICE);
	/* The root's init mounts its own /proc; /dev goes along. */
	if (umount("/proc") != 0)
		return failed("unmount", "/proc");
	if (mount("/dev", NEW_ROOT "/dev", NULL, MS_MOVE, NULL) != 0)
		return failed("move", "/dev");
	/* switch_root's way: the new root over /, then chroot into it (the
	 * initramfs's few files stay in memory, unused). */
	if (chdir(NEW_ROOT) != 0)
		return failed("chdir", NEW_ROOT);
	if (mount(".", "/", NULL, MS_MOVE, NULL) != 0)
		return failed("move", NEW_ROOT);
	if (chroot(".") != 0 || chdir("/") != 0)
		return failed("chroot", NEW_ROOT);
	execv(NEXT_INIT, argv);
	return failed("exec", NEXT_INIT);
}
