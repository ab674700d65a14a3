/* Parallel HDF5 chunking against the access pattern: two 2-D datasets of doubles, each rank
 * owning ROWS rows of COLS, written and read back in blocks of BLOCK whole rows (independent
 * transfers).  /good is chunked BLOCK x COLS (each access is one whole chunk); /bad is chunked
 * ROWS x 2 (each access cuts across COLS/2 chunks, covering a part of each).  The file is read
 * back through H5Oopen/H5Oclose (the datasets and the group "/g" that holds them).  Rank 0 prints
 * where each chunk lies in the file ("chunk NAME OFFSET SIZE", H5Dget_chunk_info): the bytes
 * that are not raw data are HDF5's metadata.  Last, the same transfer property list set
 * collective, each rank reads its first block of /g/good again (collectively).
 *
 * usage: h5_chunks FILE ROWS COLS BLOCK */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>
#include <mpi.h>

#define CHECK(x)                                                                               \
    do {                                                                                       \
        if ((x) < 0) {                                                                         \
            fprintf(stderr, "rank %d: %s failed\n", rank, #x);                                 \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                      \
        }                                                                                      \
    } while (0)

static int rank, size;
static hsize_t rows, cols, block;

/* my rows, block by block: written (buf) or read back and compared (ok) */
static int blocks(hid_t d, hid_t dxpl, double *buf, int write)
{
    int ok = 1;
    hid_t fs = H5Dget_space(d);
    hsize_t count[2] = {block, cols};
    hid_t ms = H5Screate_simple(2, count, NULL);
    double *back = malloc(block * cols * sizeof *back);
    for (hsize_t b = 0; b < rows / block; b++) {
        hsize_t start[2] = {rank * rows + b * block, 0};
        CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL));
        double *mine = buf + b * block * cols;
        if (write) {
            CHECK(H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, fs, dxpl, mine));
        } else {
            CHECK(H5Dread(d, H5T_NATIVE_DOUBLE, ms, fs, dxpl, back));
            ok &= memcmp(back, mine, block * cols * sizeof *back) == 0;
        }
    }
    free(back);
    H5Sclose(ms);
    H5Sclose(fs);
    return ok;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 5) {
        fprintf(stderr, "usage: %s FILE ROWS COLS BLOCK\n", argv[0]);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    const char *name = argv[1];
    rows = strtoull(argv[2], NULL, 10);
    cols = strtoull(argv[3], NULL, 10);
    block = strtoull(argv[4], NULL, 10);
    const char *sets[2] = {"/g/good", "/g/bad"};
    hsize_t chunks[2][2] = {{block, cols}, {rows, 2}};

    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    CHECK(H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL));
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    CHECK(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_INDEPENDENT));
    double *buf = malloc(rows * cols * sizeof *buf);
    for (hsize_t i = 0; i < rows * cols; i++)
        buf[i] = rank * 1e6 + (double)i;

    hid_t file = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    CHECK(file);
    hid_t grp = H5Gcreate2(file, "g", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(grp);
    hsize_t dims[2] = {size * rows, cols};
    hid_t space = H5Screate_simple(2, dims, NULL);
    for (int k = 0; k < 2; k++) {
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        CHECK(H5Pset_chunk(dcpl, 2, chunks[k]));
        hid_t d = H5Dcreate2(file, sets[k], H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, dcpl,
                             H5P_DEFAULT);
        CHECK(d);
        blocks(d, dxpl, buf, 1);
        CHECK(H5Dclose(d));
        H5Pclose(dcpl);
    }
    H5Sclose(space);
    H5Gclose(grp);
    CHECK(H5Fclose(file));

    /* read back through H5Oopen */
    file = H5Fopen(name, H5F_ACC_RDONLY, fapl);
    CHECK(file);
    hid_t g = H5Oopen(file, "/g", H5P_DEFAULT);
    CHECK(g);
    int ok = 1;
    for (int k = 0; k < 2; k++) {
        hid_t d = H5Oopen(g, sets[k] + 3, H5P_DEFAULT);
        CHECK(d);
        ok &= blocks(d, dxpl, buf, 0);
        hid_t fs = H5Dget_space(d);
        hsize_t n;
        CHECK(H5Dget_num_chunks(d, fs, &n));
        for (hsize_t i = 0; i < n && rank == 0; i++) {
            hsize_t off[2];
            unsigned mask;
            haddr_t addr;
            hsize_t bytes;
            CHECK(H5Dget_chunk_info(d, fs, i, off, &mask, &addr, &bytes));
            printf("chunk %s %llu %llu\n", sets[k], (unsigned long long)addr,
                   (unsigned long long)bytes);
        }
        H5Sclose(fs);
        CHECK(H5Oclose(d));
    }
    CHECK(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE));
    hid_t d = H5Oopen(g, "good", H5P_DEFAULT);
    hid_t fs = H5Dget_space(d);
    hsize_t start[2] = {rank * rows, 0}, count[2] = {block, cols};
    CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL));
    hid_t ms = H5Screate_simple(2, count, NULL);
    double *back = malloc(block * cols * sizeof *back);
    CHECK(H5Dread(d, H5T_NATIVE_DOUBLE, ms, fs, dxpl, back));
    ok &= memcmp(back, buf, block * cols * sizeof *back) == 0;
    free(back);
    H5Sclose(ms);
    H5Sclose(fs);
    CHECK(H5Oclose(d));
    CHECK(H5Oclose(g));
    CHECK(H5Fclose(file));
    H5Pclose(dxpl);
    H5Pclose(fapl);
    printf("rank %d of %d %s\n", rank, size, ok ? "ok" : "differs");
    free(buf);
    MPI_Finalize();
    return ok ? 0 : 1;
}
