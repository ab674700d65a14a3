/* PnetCDF: every rank writes its block of rows of a 2-D variable of doubles (temp: ROWS x COLS
 * per rank), collectively (ncmpi_put_vara_double_all) or independently (ncmpi_put_vara_double
 * in independent data mode), closes, reopens and reads its block back with the flexible
 * ncmpi_get_vara_all (MPI_DOUBLE).
 *
 * usage: pnc_io FILE coll|indep ROWS COLS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>
#include <pnetcdf.h>

#define CHECK(x)                                                                               \
    do {                                                                                       \
        int e_ = (x);                                                                          \
        if (e_ != NC_NOERR) {                                                                  \
            fprintf(stderr, "rank %d: %s: %s\n", rank, #x, ncmpi_strerror(e_));              \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                      \
        }                                                                                      \
    } while (0)

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 5) {
        fprintf(stderr, "usage: %s FILE coll|indep ROWS COLS\n", argv[0]);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    int coll = strcmp(argv[2], "coll") == 0;
    MPI_Offset rows = atol(argv[3]), cols = atol(argv[4]);
    int nc, dims[2], var;
    CHECK(ncmpi_create(MPI_COMM_WORLD, argv[1], NC_CLOBBER | NC_64BIT_DATA, MPI_INFO_NULL, &nc));
    CHECK(ncmpi_def_dim(nc, "y", size * rows, &dims[0]));
    CHECK(ncmpi_def_dim(nc, "x", cols, &dims[1]));
    CHECK(ncmpi_def_var(nc, "temp", NC_DOUBLE, 2, dims, &var));
    CHECK(ncmpi_enddef(nc));
    double *buf = malloc(rows * cols * sizeof *buf), *back = calloc(rows * cols, sizeof *back);
    for (MPI_Offset i = 0; i < rows * cols; i++)
        buf[i] = rank * 1e6 + (double)i;
    MPI_Offset start[2] = {rank * rows, 0}, count[2] = {rows, cols};
    if (coll) {
        CHECK(ncmpi_put_vara_double_all(nc, var, start, count, buf));
    } else {
        CHECK(ncmpi_begin_indep_data(nc));
        CHECK(ncmpi_put_vara_double(nc, var, start, count, buf));
        CHECK(ncmpi_end_indep_data(nc));
    }
    CHECK(ncmpi_close(nc));
    CHECK(ncmpi_open(MPI_COMM_WORLD, argv[1], NC_NOWRITE, MPI_INFO_NULL, &nc));
    CHECK(ncmpi_inq_varid(nc, "temp", &var));
    CHECK(ncmpi_get_vara_all(nc, var, start, count, back, rows * cols, MPI_DOUBLE));
    CHECK(ncmpi_close(nc));
    int ok = memcmp(back, buf, rows * cols * sizeof *buf) == 0;
    printf("rank %d of %d %s\n", rank, size, ok ? "ok" : "differs");
    free(buf);
    free(back);
    MPI_Finalize();
    return ok ? 0 : 1;
}
