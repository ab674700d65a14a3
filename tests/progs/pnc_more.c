/* PnetCDF's other put/get forms: every rank owns 4 rows of 8 columns of the variables d
 * (double), f (float) and i (int), and writes and reads them with the flexible vara, var1,
 * vars and varm calls and the typed vara calls, first collectively (_all), then in independent
 * data mode; then posts the nonblocking iput (d), bput (f) and iget (i) and waits for them
 * collectively (ncmpi_wait_all), and an iget of d it waits for independently (ncmpi_wait).
 * Each block read back whole must equal what was written (a model kept here).
 *
 * usage: pnc_more FILE */
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

#define R 4
#define C 8

static int rank;
static double model[R][C]; /* d's rows of this rank */

/* rows [r, r + n) of d from buf, row-major */
static void put(int r, int c, int n, int m, const double *buf)
{
    for (int y = 0; y < n; y++)
        for (int x = 0; x < m; x++)
            model[r + y][c + x] = buf[y * m + x];
}

static int same(const double *back)
{
    return memcmp(back, model, sizeof model) == 0;
}

/* one pass: all = collective calls, else independent ones */
static int pass(int nc, int d, int f, int i, int all, double base)
{
    MPI_Offset b = (MPI_Offset)rank * R;
    double buf[R * C], back[R * C];
    float fb[R * C], fback[R * C];
    int ib[R * C], iback[R * C];
    for (int k = 0; k < R * C; k++) {
        buf[k] = base + rank * 1000 + k;
        fb[k] = (float)buf[k];
        ib[k] = (int)buf[k];
    }
    MPI_Offset row[2] = {b, 0}, one_row[2] = {1, C}, block[2] = {R, C}, unit[2] = {1, 1};
    MPI_Offset at1[2] = {b + 1, 0}, at1b[2] = {b + 1, 1}, cnt7[2] = {1, C - 1};
    MPI_Offset at2[2] = {b + 2, 0}, two_rows[2] = {2, C}, imap[2] = {C, 1};
    MPI_Offset half[2] = {2, C / 2}, by2[2] = {2, 2}, tr[2] = {1, R};
    int ok = 1;
    if (all) {
        CHECK(ncmpi_put_vara_all(nc, d, row, one_row, buf, C, MPI_DOUBLE));
        CHECK(ncmpi_put_var1_all(nc, d, at1, buf + 8, 1, MPI_DOUBLE));
        CHECK(ncmpi_put_vars_all(nc, d, at1b, cnt7, unit, buf + 9, C - 1, MPI_DOUBLE));
        CHECK(ncmpi_put_varm_all(nc, d, at2, two_rows, unit, imap, buf + 16, 2 * C,
                                 MPI_DOUBLE));
        CHECK(ncmpi_put_vara_float_all(nc, f, row, block, fb));
        CHECK(ncmpi_put_vara_int_all(nc, i, row, block, ib));
        CHECK(ncmpi_get_var1_all(nc, d, row, back, 1, MPI_DOUBLE));
        CHECK(ncmpi_get_vars_all(nc, d, row, half, by2, back, 2 * C / 2, MPI_DOUBLE));
        CHECK(ncmpi_get_varm_all(nc, d, row, block, unit, tr, back, R * C, MPI_DOUBLE));
        CHECK(ncmpi_get_vara_double_all(nc, d, row, block, back));
        CHECK(ncmpi_get_vara_float_all(nc, f, row, block, fback));
        CHECK(ncmpi_get_vara_int_all(nc, i, row, block, iback));
    } else {
        CHECK(ncmpi_put_vara(nc, d, row, one_row, buf, C, MPI_DOUBLE));
        CHECK(ncmpi_put_var1(nc, d, at1, buf + 8, 1, MPI_DOUBLE));
        CHECK(ncmpi_put_vars(nc, d, at1b, cnt7, unit, buf + 9, C - 1, MPI_DOUBLE));
        CHECK(ncmpi_put_varm(nc, d, at2, two_rows, unit, imap, buf + 16, 2 * C, MPI_DOUBLE));
        CHECK(ncmpi_put_vara_float(nc, f, row, block, fb));
        CHECK(ncmpi_put_vara_int(nc, i, row, block, ib));
        CHECK(ncmpi_get_var1(nc, d, row, back, 1, MPI_DOUBLE));
        CHECK(ncmpi_get_vars(nc, d, row, half, by2, back, 2 * C / 2, MPI_DOUBLE));
        CHECK(ncmpi_get_varm(nc, d, row, block, unit, tr, back, R * C, MPI_DOUBLE));
        CHECK(ncmpi_get_vara(nc, d, row, block, back, R * C, MPI_DOUBLE));
        CHECK(ncmpi_get_vara_double(nc, d, row, block, back));
        CHECK(ncmpi_get_vara_float(nc, f, row, block, fback));
        CHECK(ncmpi_get_vara_int(nc, i, row, block, iback));
    }
    put(0, 0, 1, C, buf);
    put(1, 0, 1, 1, buf + 8);
    put(1, 1, 1, C - 1, buf + 9);
    put(2, 0, 2, C, buf + 16);
    ok &= same(back);
    for (int k = 0; k < R * C; k++)
        ok &= fback[k] == fb[k] && iback[k] == ib[k];
    return ok;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    int nc, dims[2], d, f, i;
    CHECK(ncmpi_create(MPI_COMM_WORLD, argv[1], NC_CLOBBER | NC_64BIT_DATA, MPI_INFO_NULL, &nc));
    CHECK(ncmpi_def_dim(nc, "y", size * R, &dims[0]));
    CHECK(ncmpi_def_dim(nc, "x", C, &dims[1]));
    CHECK(ncmpi_def_var(nc, "d", NC_DOUBLE, 2, dims, &d));
    CHECK(ncmpi_def_var(nc, "f", NC_FLOAT, 2, dims, &f));
    CHECK(ncmpi_def_var(nc, "i", NC_INT, 2, dims, &i));
    CHECK(ncmpi_enddef(nc));
    int ok = pass(nc, d, f, i, 1, 0);
    CHECK(ncmpi_begin_indep_data(nc));
    ok &= pass(nc, d, f, i, 0, 100);
    CHECK(ncmpi_end_indep_data(nc));

    MPI_Offset row[2] = {(MPI_Offset)rank * R, 0}, block[2] = {R, C};
    double buf[R * C], back[R * C];
    float fb[R * C];
    int iback[R * C], q[3], st[3];
    for (int k = 0; k < R * C; k++)
        fb[k] = (float)(buf[k] = 200 + rank * 1000 + k);
    CHECK(ncmpi_buffer_attach(nc, sizeof fb));
    CHECK(ncmpi_iput_vara(nc, d, row, block, buf, R * C, MPI_DOUBLE, &q[0]));
    CHECK(ncmpi_bput_vara(nc, f, row, block, fb, R * C, MPI_FLOAT, &q[1]));
    CHECK(ncmpi_iget_vara(nc, i, row, block, iback, R * C, MPI_INT, &q[2]));
    CHECK(ncmpi_wait_all(nc, 3, q, st));
    CHECK(ncmpi_buffer_detach(nc));
    for (int k = 0; k < R * C; k++)
        ok &= st[0] == NC_NOERR && st[1] == NC_NOERR && iback[k] == 100 + rank * 1000 + k;
    CHECK(ncmpi_begin_indep_data(nc));
    CHECK(ncmpi_iget_vara(nc, d, row, block, back, R * C, MPI_DOUBLE, &q[0]));
    CHECK(ncmpi_wait(nc, 1, q, st));
    CHECK(ncmpi_end_indep_data(nc));
    ok &= memcmp(back, buf, sizeof buf) == 0;
    CHECK(ncmpi_close(nc));
    printf("rank %d of %d %s\n", rank, size, ok ? "ok" : "differs");
    MPI_Finalize();
    return ok ? 0 : 1;
}
