/* Parallel HDF5, the way applications use it: every rank writes its block of rows of a 2-D
 * dataset of doubles (/g/temp: ROWS x COLS per rank, contiguous or chunked by ROWS/2 x COLS),
 * then a strided selection of a 1-D dataset of ints (/g/idx: element rank + k*size, k < N), both
 * collective or independent; flushes, closes, reopens read-only and reads its block back.
 *
 * With a 7th argument "conv", /g/temp is written from floats (a datatype conversion: HDF5 1.10
 * then does a collective transfer independently).
 *
 * usage: h5_io FILE coll|indep contig|chunk ROWS COLS N [conv] */
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

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 7 && argc != 8) {
        fprintf(stderr, "usage: %s FILE coll|indep contig|chunk ROWS COLS N [conv]\n", argv[0]);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    const char *name = argv[1];
    int coll = strcmp(argv[2], "coll") == 0, chunked = strcmp(argv[3], "chunk") == 0;
    hsize_t rows = strtoull(argv[4], NULL, 10), cols = strtoull(argv[5], NULL, 10);
    hsize_t n = strtoull(argv[6], NULL, 10);
    int conv = argc == 8 && strcmp(argv[7], "conv") == 0;

    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    CHECK(H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL));
    hid_t file = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    CHECK(file);
    hid_t grp = H5Gcreate2(file, "g", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(grp);

    hsize_t dims[2] = {size * rows, cols};
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (chunked) {
        hsize_t chunk[2] = {rows / 2 ? rows / 2 : 1, cols};
        CHECK(H5Pset_chunk(dcpl, 2, chunk));
    }
    hid_t temp = H5Dcreate2(grp, "temp", H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, dcpl,
                            H5P_DEFAULT);
    CHECK(temp);
    hsize_t idims[1] = {size * n};
    hid_t ispace = H5Screate_simple(1, idims, NULL);
    hid_t idx = H5Dcreate2(file, "/g/idx", H5T_NATIVE_INT, ispace, H5P_DEFAULT, H5P_DEFAULT,
                           H5P_DEFAULT);
    CHECK(idx);

    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    CHECK(H5Pset_dxpl_mpio(dxpl, coll ? H5FD_MPIO_COLLECTIVE : H5FD_MPIO_INDEPENDENT));

    /* my block of rows */
    double *buf = malloc(rows * cols * sizeof *buf);
    float *fbuf = malloc(rows * cols * sizeof *fbuf);
    for (hsize_t i = 0; i < rows * cols; i++)
        fbuf[i] = (float)(buf[i] = rank * 1e6 + (double)i); /* exact in a float */
    hsize_t start[2] = {rank * rows, 0}, count[2] = {rows, cols};
    hid_t fs = H5Dget_space(temp);
    CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL));
    hid_t ms = H5Screate_simple(2, count, NULL);
    if (conv)
        CHECK(H5Dwrite(temp, H5T_NATIVE_FLOAT, ms, fs, dxpl, fbuf));
    else
        CHECK(H5Dwrite(temp, H5T_NATIVE_DOUBLE, ms, fs, dxpl, buf));

    /* every size-th int, from mine */
    int *ibuf = malloc(n * sizeof *ibuf);
    for (hsize_t k = 0; k < n; k++)
        ibuf[k] = (int)(rank + k * size);
    hsize_t istart = rank, istride = size, icount = n;
    hid_t ifs = H5Dget_space(idx);
    CHECK(H5Sselect_hyperslab(ifs, H5S_SELECT_SET, &istart, &istride, &icount, NULL));
    hid_t ims = H5Screate_simple(1, &icount, NULL);
    CHECK(H5Dwrite(idx, H5T_NATIVE_INT, ims, ifs, dxpl, ibuf));

    CHECK(H5Fflush(file, H5F_SCOPE_GLOBAL));
    H5Sclose(ims);
    H5Sclose(ifs);
    H5Dclose(idx);
    H5Dclose(temp);
    H5Gclose(grp);
    H5Sclose(space);
    H5Sclose(ispace);
    H5Pclose(dcpl);
    CHECK(H5Fclose(file));

    /* read my block back */
    file = H5Fopen(name, H5F_ACC_RDONLY, fapl);
    CHECK(file);
    temp = H5Dopen2(file, "/g/temp", H5P_DEFAULT);
    CHECK(temp);
    double *back = calloc(rows * cols, sizeof *back);
    CHECK(H5Dread(temp, H5T_NATIVE_DOUBLE, ms, fs, dxpl, back));
    int ok = memcmp(back, buf, rows * cols * sizeof *buf) == 0;
    H5Dclose(temp);
    CHECK(H5Fclose(file));
    H5Sclose(ms);
    H5Sclose(fs);
    H5Pclose(dxpl);
    H5Pclose(fapl);
    printf("rank %d of %d %s\n", rank, size, ok ? "ok" : "differs");
    free(buf);
    free(fbuf);
    free(ibuf);
    free(back);
    MPI_Finalize();
    return ok ? 0 : 1;
}
