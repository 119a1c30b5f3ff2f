/*
 * mapsync FILE write STRING | mapsync FILE read | mapsync FILE fsync STOPFILE
 *
 * Maps FILE with MAP_SHARED_VALIDATE | MAP_SYNC (the mapping a pmem
 * application uses to store without fsync) and stores STRING at its start,
 * flushing the cache lines with dcbst + sync (what TCG accepts; Linux's own
 * pmem flush uses ISA 3.1 forms it refuses), or prints what it finds there.
 * fsync calls fsync(FILE) until STOPFILE exists: on a pmem disk that needs
 * H_SCM_FLUSH each call sleeps while its flush is pending, so one process
 * keeps a flush pending nearly all the time (a migration's switch).
 * Built static with powerpc64le-linux-gnu-gcc by tests/real-guest.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif
#define LEN 65536

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[2], "fsync") == 0) {
		int fd = open(argv[1], O_RDWR);
		unsigned long n = 0, bad = 0;
		if (fd < 0) {
			printf("mapsync: %s: %s\n", argv[1], strerror(errno));
			return 1;
		}
		while (access(argv[3], F_OK) != 0) {
			if (fsync(fd) != 0)
				bad++;
			n++;
		}
		printf("mapsync: %lu fsyncs, %lu failed\n", n, bad);
		return bad != 0;
	}
	int writing = argc == 4 && strcmp(argv[2], "write") == 0;
	if (!writing && !(argc == 3 && strcmp(argv[2], "read") == 0)) {
		fprintf(stderr, "usage: mapsync FILE write STRING | mapsync FILE read\n");
		return 2;
	}
	int fd = open(argv[1], O_RDWR | O_CREAT, 0644);
	if (fd < 0 || (writing && ftruncate(fd, LEN) != 0)) {
		printf("mapsync: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	char *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0);
	if (p == MAP_FAILED) {
		printf("mapsync: MAP_SYNC mapping refused: %s\n", strerror(errno));
		return 3;
	}
	if (writing) {
		size_t n = strlen(argv[3]) + 1;
		memcpy(p, argv[3], n);
		for (size_t i = 0; i < n; i += 128)
			__asm__ volatile("dcbst 0,%0" : : "r"(p + i) : "memory");
		__asm__ volatile("sync" : : : "memory");
		printf("mapsync: MAP_SYNC mapping stored '%s'\n", argv[3]);
	} else {
		printf("mapsync: read '%.64s'\n", p);
	}
	return 0;
}
