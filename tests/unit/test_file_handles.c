/*
 * test_file_handles.c — data files opened while used under a process-wide cap: more files than
 * the cap all read and write their own bytes, no more than the cap stay open, and a file removed
 * or replaced while its descriptor was closed is an I/O error, never the new file's bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/file_handles.h"
#include "test_support.h"

enum { FILES = 40, CAP = 8 };

static storage_file *make_file(const char *dir, int i, char *path, size_t pathlen)
{
    snprintf(path, pathlen, "%s/f%d", dir, i);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    storage_file *f = NULL;
    assert_int_equal(storage_file_adopt(fd, path, O_RDWR, &f), KTH_OK);
    return f;
}

static void test_more_files_than_the_cap_keep_their_own_bytes(void **state)
{
    (void)state;
    char *dir = test_make_dir();
    storage_file_set_open_cap(CAP);
    size_t base = storage_file_open_count();
    storage_file *f[FILES];
    char path[512];
    for (int i = 0; i < FILES; i++) {
        f[i] = make_file(dir, i, path, sizeof path);
        assert_true(storage_file_open_count() <= base + CAP);
    }
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < FILES; i++) {
            uint8_t b[64];
            memset(b, (int)(i * 3 + round), sizeof b);
            assert_int_equal(storage_file_pwrite(f[i], (uint64_t)round * 64, b, sizeof b), KTH_OK);
            assert_true(storage_file_open_count() <= base + CAP);
        }
        for (int i = FILES - 1; i >= 0; i--) {
            uint8_t b[64], want[64];
            memset(want, (int)(i * 3 + round), sizeof want);
            assert_int_equal(storage_file_pread(f[i], (uint64_t)round * 64, b, sizeof b), KTH_OK);
            assert_memory_equal(b, want, sizeof b);
        }
        assert_int_equal(storage_file_datasync(f[round]), KTH_OK);
    }
    /* Past the end of what was written: an error, not zeros. */
    uint8_t b[8];
    assert_int_equal(storage_file_pread(f[0], 3 * 64, b, sizeof b), KTH_ERR_IO);
    for (int i = 0; i < FILES; i++)
        storage_file_free(f[i]);
    assert_int_equal(storage_file_open_count(), base);
    storage_file_set_open_cap(0);
    assert_true(storage_file_open_cap() >= 16);
    assert_int_equal(test_remove_tree(dir), 0);
    free(dir);
}

static void test_a_replaced_file_is_not_read_after_its_descriptor_was_closed(void **state)
{
    (void)state;
    char *dir = test_make_dir();
    storage_file_set_open_cap(1);
    char path[512], other[512];
    storage_file *f = make_file(dir, 0, path, sizeof path);
    assert_int_equal(storage_file_pwrite(f, 0, (const uint8_t *)"ours", 4), KTH_OK);
    storage_file *g = make_file(dir, 1, other, sizeof other); /* closes f's descriptor */
    assert_int_equal(unlink(path), 0);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "them", 4), 4);
    close(fd);
    uint8_t b[4];
    assert_int_equal(storage_file_pread(f, 0, b, sizeof b), KTH_ERR_IO);
    assert_int_equal(storage_file_pread(g, 0, b, 1), KTH_ERR_IO); /* empty file: short */
    storage_file_free(f);
    storage_file_free(g);
    storage_file_set_open_cap(0);
    assert_int_equal(test_remove_tree(dir), 0);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_more_files_than_the_cap_keep_their_own_bytes),
        cmocka_unit_test(test_a_replaced_file_is_not_read_after_its_descriptor_was_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
