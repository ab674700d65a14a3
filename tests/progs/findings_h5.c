/* Parallel HDF5 with one planted I/O problem (tests/test_findings.py):
 *   findings_h5 make F  the ranks create F with a dataset /x of 1 Mi doubles (8 MiB,
 *                       contiguous; rank 0 writes it): the input, made before the job
 *   findings_h5 read F  every rank opens F read-only and reads all of /x with one independent
 *                       H5Dread: every rank reads the whole input */
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>
#include <mpi.h>

#define N (1 << 20)

static hid_t open_mpio(const char *path, int create)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL);
    hid_t f = create ? H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)
                     : H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    return f;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, rc = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    double *buf = malloc(N * sizeof *buf);
    for (int i = 0; i < N; i++)
        buf[i] = i;
    if (argc < 3) {
        MPI_Finalize();
        return 2;
    }
    const char *path = argv[2];
    if (strcmp(argv[1], "read") == 0)
        goto read;
    hid_t f = open_mpio(path, 1);
    hsize_t dims[1] = {N};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t d = f < 0 ? -1 : H5Dcreate2(f, "x", H5T_NATIVE_DOUBLE, space, H5P_DEFAULT,
                                      H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0)
        rc = 1;
    else if (rank != 0)
        H5Sselect_none(space);
    if (d >= 0 && H5Dwrite(d, H5T_NATIVE_DOUBLE, space, space, H5P_DEFAULT, buf) < 0)
        rc = 1;
    if (d >= 0)
        H5Dclose(d);
    if (f >= 0)
        H5Fclose(f);
    H5Sclose(space);
    goto done;
read:
    f = open_mpio(path, 0);
    d = f < 0 ? -1 : H5Dopen2(f, "x", H5P_DEFAULT);
    if (d < 0 || H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0 ||
        buf[N - 1] != N - 1)
        rc = 1;
    if (d >= 0)
        H5Dclose(d);
    if (f >= 0)
        H5Fclose(f);
done:
    free(buf);
    MPI_Finalize();
    return rc;
}
