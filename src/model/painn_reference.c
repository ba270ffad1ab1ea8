/* painn_reference.c — the student model in float64 with its exact gradient.
 *
 * Forward (shared/docs/student-model.md), per edge i -> j (sender i):
 *   r = x_i - x_j, d = |r|, u = r / (d + 1e-8)
 *   e_k = exp(-(d - c_k)^2 / w_k^2) * fc(d),  fc = (cos(pi d / rc) + 1) / 2
 *   phi = W2 silu(W1 e + b1) + b2 = [phi_s, phi_v1, phi_v2]        (filter)
 *   s_j += sum_i s_i phi_s;  v_j += sum_i v_i phi_v1 + u (x) phi_v2  (message)
 *   n_j = |v_j| per channel; [a, g1, g2] = W4 silu(W3 [s_j; n_j] + b3) + b4
 *   s_j += a;  v_j = v_j g1 + (M v_j) g2                            (update)
 *   E = sum_j W7 silu(W6 silu(W5 s_j + b5) + b6) + b7                (readout)
 *
 * Reverse pass: with gs = dE/ds and gv = dE/dv, walk the layers backwards
 * through update, then message (recomputing each edge's filter), collecting
 * dE/de and dE/du per edge; finally the geometry gives dE/dr per edge and
 * F_i = -dE/dx_i. Every step is written out below; no autodiff. */
#include "painn_reference.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define U_EPS 1e-8 /* the model's regulariser in u = r / (d + eps) */

typedef struct edge {
    int src, dst;    /* sender i, receiver j */
    double r[3], d;  /* r = x_i - x_j */
    double u[3];     /* r / (d + eps) */
} edge;

/* Everything the reverse pass needs from the forward pass. */
typedef struct forward_state {
    int n_atoms, n_edges;
    edge *edges;          /* grouped by receiver */
    double *rbf;          /* [E*K] exp(...) before the cutoff */
    double *e;            /* [E*K] rbf * fc */
    double *fc;           /* [E] */
    /* per layer l, per atom: features entering the message, after the
     * message, the norms, the update MLP pre-activation, its output, M v */
    double **s_in, **v_in, **s_mid, **v_mid, **norm, **hu, **upd, **mixed;
    double *s_final;      /* [n*H] scalars entering the readout */
    double *z5, *z6;      /* readout pre-activations [n*H/2], [n*H/4] */
} forward_state;

/* ---- small dense helpers ---- */

static double silu(double x) { return x / (1.0 + exp(-x)); }

/* d silu / dx = sigma(x) (1 + x (1 - sigma(x))) */
static double silu_grad(double x)
{
    double sig = 1.0 / (1.0 + exp(-x));
    return sig * (1.0 + x * (1.0 - sig));
}

/* y = W x + b, W [out, in] */
static void linear(const double *W, const double *b, int out, int in, const double *x, double *y)
{
    for (int o = 0; o < out; o++) {
        double acc = b[o];
        for (int k = 0; k < in; k++) acc += W[(size_t)o * in + k] * x[k];
        y[o] = acc;
    }
}

/* gx += W^T gy */
static void linear_backward(const double *W, int out, int in, const double *gy, double *gx)
{
    for (int o = 0; o < out; o++)
        for (int k = 0; k < in; k++) gx[k] += W[(size_t)o * in + k] * gy[o];
}

/* ---- forward pieces ---- */

static int build_edges(const painn_model *m, const molecule_batch *b, const double *x,
                       forward_state *st, dm_error *err)
{
    size_t cap = 0;
    for (int mol = 0; mol < b->n_molecules; mol++) {
        size_t n = (size_t)(b->offset[mol + 1] - b->offset[mol]);
        cap += n * (n - 1);
    }
    st->edges = malloc(sizeof(edge) * (cap + 1));
    if (!st->edges) return dm_fail(err, "out of memory for %zu candidate edges", cap);
    int ne = 0;
    for (int mol = 0; mol < b->n_molecules; mol++) {
        for (int j = b->offset[mol]; j < b->offset[mol + 1]; j++) {
            for (int i = b->offset[mol]; i < b->offset[mol + 1]; i++) {
                if (i == j) continue;
                edge ed = {.src = i, .dst = j};
                for (int c = 0; c < 3; c++) ed.r[c] = x[3 * i + c] - x[3 * j + c];
                ed.d = sqrt(ed.r[0] * ed.r[0] + ed.r[1] * ed.r[1] + ed.r[2] * ed.r[2]);
                if (ed.d > m->cutoff) continue;
                for (int c = 0; c < 3; c++) ed.u[c] = ed.r[c] / (ed.d + U_EPS);
                st->edges[ne++] = ed;
            }
        }
    }
    st->n_edges = ne;
    return 0;
}

static void radial_basis(const painn_model *m, forward_state *st)
{
    const int K = m->K;
    for (int ed = 0; ed < st->n_edges; ed++) {
        double d = st->edges[ed].d;
        double fc = d < m->cutoff ? 0.5 * (cos(M_PI * d / m->cutoff) + 1.0) : 0.0;
        st->fc[ed] = fc;
        for (int k = 0; k < K; k++) {
            double t = (d - m->rbf_centers[k]) / m->rbf_widths[k];
            st->rbf[(size_t)ed * K + k] = exp(-t * t);
            st->e[(size_t)ed * K + k] = st->rbf[(size_t)ed * K + k] * fc;
        }
    }
}

/* phi = W2 silu(h1) + b2 with h1 = W1 e + b1; h1 and phi are [H] and [3H]. */
static void filter_forward(const painn_layer *ly, int H, int K, const double *e, double *h1,
                           double *a1, double *phi)
{
    linear(ly->W1, ly->b1, H, K, e, h1);
    for (int h = 0; h < H; h++) a1[h] = silu(h1[h]);
    linear(ly->W2, ly->b2, 3 * H, H, a1, phi);
}

static void message_forward(const painn_model *m, const painn_layer *ly, forward_state *st,
                            const double *s_in, const double *v_in, double *s_mid, double *v_mid,
                            double *scratch)
{
    const int H = m->H, K = m->K;
    double *h1 = scratch, *a1 = h1 + H, *phi = a1 + H;
    memcpy(s_mid, s_in, sizeof(double) * st->n_atoms * H);
    memcpy(v_mid, v_in, sizeof(double) * st->n_atoms * 3 * H);
    for (int ed = 0; ed < st->n_edges; ed++) {
        const edge *g = &st->edges[ed];
        filter_forward(ly, H, K, st->e + (size_t)ed * K, h1, a1, phi);
        const double *si = s_in + (size_t)g->src * H;
        const double *vi = v_in + (size_t)g->src * 3 * H;
        double *sj = s_mid + (size_t)g->dst * H;
        double *vj = v_mid + (size_t)g->dst * 3 * H;
        for (int h = 0; h < H; h++) {
            sj[h] += si[h] * phi[h];
            for (int c = 0; c < 3; c++)
                vj[c * H + h] += vi[c * H + h] * phi[H + h] + g->u[c] * phi[2 * H + h];
        }
    }
}

/* Per atom: n = |v| per channel, [a, g1, g2] = W4 silu(W3 [s; n] + b3) + b4,
 * s += a, v = v g1 + (M v) g2 (the vector update only where M exists). */
static void update_forward(const painn_model *m, const painn_layer *ly, int n_atoms,
                           const double *s_mid, const double *v_mid, double *norm, double *hu,
                           double *upd, double *mixed, double *s_out, double *v_out,
                           double *scratch)
{
    const int H = m->H;
    double *x = scratch, *au = x + 2 * H;
    for (int j = 0; j < n_atoms; j++) {
        const double *s = s_mid + (size_t)j * H, *v = v_mid + (size_t)j * 3 * H;
        double *nj = norm + (size_t)j * H, *hj = hu + (size_t)j * H, *uj = upd + (size_t)j * 3 * H;
        double *mv = mixed + (size_t)j * 3 * H;
        for (int h = 0; h < H; h++) {
            nj[h] = sqrt(v[h] * v[h] + v[H + h] * v[H + h] + v[2 * H + h] * v[2 * H + h]);
            x[h] = s[h];
            x[H + h] = nj[h];
        }
        linear(ly->W3, ly->b3, H, 2 * H, x, hj);
        for (int h = 0; h < H; h++) au[h] = silu(hj[h]);
        linear(ly->W4, ly->b4, 3 * H, H, au, uj);
        for (int h = 0; h < H; h++) s_out[(size_t)j * H + h] = s[h] + uj[h];
        if (!ly->has_mixing) continue; /* last layer: v is not used again */
        for (int c = 0; c < 3; c++)
            for (int h = 0; h < H; h++) {
                double acc = 0.0;
                for (int c2 = 0; c2 < 3; c2++) acc += ly->mixing[3 * c + c2] * v[c2 * H + h];
                mv[c * H + h] = acc;
                v_out[(size_t)j * 3 * H + c * H + h] = v[c * H + h] * uj[H + h] + acc * uj[2 * H + h];
            }
    }
}

/* E_j = W7 silu(W6 silu(W5 s_j + b5) + b6) + b7, summed per molecule. */
static void readout_forward(const painn_model *m, const molecule_batch *b, forward_state *st,
                            double *energies, double *scratch)
{
    const int H = m->H, H2 = H / 2, H4 = H / 4;
    double *a5 = scratch, *a6 = a5 + H2;
    for (int mol = 0; mol < b->n_molecules; mol++) {
        double E = 0.0;
        for (int j = b->offset[mol]; j < b->offset[mol + 1]; j++) {
            double *z5 = st->z5 + (size_t)j * H2, *z6 = st->z6 + (size_t)j * H4, ej;
            linear(m->W5, m->b5, H2, H, st->s_final + (size_t)j * H, z5);
            for (int k = 0; k < H2; k++) a5[k] = silu(z5[k]);
            linear(m->W6, m->b6, H4, H2, a5, z6);
            for (int k = 0; k < H4; k++) a6[k] = silu(z6[k]);
            linear(m->W7, m->b7, 1, H4, a6, &ej);
            E += ej;
        }
        energies[mol] = E;
    }
}

/* ---- reverse pieces ---- */

/* gs[j] = dE/ds_j through the readout MLP. */
static void readout_backward(const painn_model *m, const forward_state *st, double *gs,
                             double *scratch)
{
    const int H = m->H, H2 = H / 2, H4 = H / 4;
    double *g6 = scratch, *g5 = g6 + H4;
    for (int j = 0; j < st->n_atoms; j++) {
        const double *z5 = st->z5 + (size_t)j * H2, *z6 = st->z6 + (size_t)j * H4;
        for (int k = 0; k < H4; k++) g6[k] = m->W7[k] * silu_grad(z6[k]);
        memset(g5, 0, sizeof(double) * H2);
        linear_backward(m->W6, H4, H2, g6, g5);
        for (int k = 0; k < H2; k++) g5[k] *= silu_grad(z5[k]);
        memset(gs + (size_t)j * H, 0, sizeof(double) * H);
        linear_backward(m->W5, H2, H, g5, gs + (size_t)j * H);
    }
}

/* In: gs, gv = dE/d(s, v) after the update of layer l. Out (in place):
 * dE/d(s, v) after the message of layer l. */
static void update_backward(const painn_model *m, const painn_layer *ly, const forward_state *st,
                            int l, double *gs, double *gv, double *scratch)
{
    const int H = m->H;
    double *gupd = scratch, *gau = gupd + 3 * H, *gx = gau + H;
    for (int j = 0; j < st->n_atoms; j++) {
        const double *v = st->v_mid[l] + (size_t)j * 3 * H, *n = st->norm[l] + (size_t)j * H;
        const double *hu = st->hu[l] + (size_t)j * H, *upd = st->upd[l] + (size_t)j * 3 * H;
        const double *mv = st->mixed[l] + (size_t)j * 3 * H;
        double *gsj = gs + (size_t)j * H, *gvj = gv + (size_t)j * 3 * H;
        /* d/d(a, g1, g2); then dE/dv through v g1 + (M v) g2 */
        for (int h = 0; h < H; h++) {
            gupd[h] = gsj[h];
            gupd[H + h] = gupd[2 * H + h] = 0.0;
        }
        if (ly->has_mixing) {
            for (int h = 0; h < H; h++) {
                double gout[3] = {gvj[h], gvj[H + h], gvj[2 * H + h]};
                for (int c = 0; c < 3; c++) {
                    gupd[H + h] += gout[c] * v[c * H + h];
                    gupd[2 * H + h] += gout[c] * mv[c * H + h];
                }
                for (int c = 0; c < 3; c++) {
                    double acc = gout[c] * upd[H + h];
                    for (int c2 = 0; c2 < 3; c2++)
                        acc += ly->mixing[3 * c2 + c] * gout[c2] * upd[2 * H + h];
                    gvj[c * H + h] = acc;
                }
            }
        } else {
            memset(gvj, 0, sizeof(double) * 3 * H);
        }
        /* through W4 silu(W3 [s; n] + b3) + b4 */
        memset(gau, 0, sizeof(double) * H);
        linear_backward(ly->W4, 3 * H, H, gupd, gau);
        for (int h = 0; h < H; h++) gau[h] *= silu_grad(hu[h]);
        memset(gx, 0, sizeof(double) * 2 * H);
        linear_backward(ly->W3, H, 2 * H, gau, gx);
        /* s_out = s + a: the residual plus the MLP's input */
        for (int h = 0; h < H; h++) {
            gsj[h] += gx[h];
            if (n[h] > 0.0) /* d|v|/dv = v/|v|; 0 where |v| = 0, as PyTorch */
                for (int c = 0; c < 3; c++) gvj[c * H + h] += gx[H + h] * v[c * H + h] / n[h];
        }
    }
}

/* In: gs, gv = dE/d(s, v) after the message of layer l. Out: dE/d(s, v)
 * entering layer l (in gs_prev, gv_prev); accumulates dE/de into ge and
 * dE/du into gu per edge. */
static void message_backward(const painn_model *m, const painn_layer *ly, const forward_state *st,
                             int l, const double *gs, const double *gv, double *gs_prev,
                             double *gv_prev, double *ge, double *gu, double *scratch)
{
    const int H = m->H, K = m->K;
    double *h1 = scratch, *a1 = h1 + H, *phi = a1 + H, *gphi = phi + 3 * H, *ga1 = gphi + 3 * H;
    memcpy(gs_prev, gs, sizeof(double) * st->n_atoms * H);
    memcpy(gv_prev, gv, sizeof(double) * st->n_atoms * 3 * H);
    for (int ed = 0; ed < st->n_edges; ed++) {
        const edge *g = &st->edges[ed];
        filter_forward(ly, H, K, st->e + (size_t)ed * K, h1, a1, phi);
        const double *si = st->s_in[l] + (size_t)g->src * H;
        const double *vi = st->v_in[l] + (size_t)g->src * 3 * H;
        const double *gsj = gs + (size_t)g->dst * H, *gvj = gv + (size_t)g->dst * 3 * H;
        double *gsi = gs_prev + (size_t)g->src * H, *gvi = gv_prev + (size_t)g->src * 3 * H;
        for (int h = 0; h < H; h++) {
            /* s_j += s_i phi_s */
            gsi[h] += gsj[h] * phi[h];
            gphi[h] = gsj[h] * si[h];
            /* v_j[c] += v_i[c] phi_v1 + u[c] phi_v2 */
            gphi[H + h] = gphi[2 * H + h] = 0.0;
            for (int c = 0; c < 3; c++) {
                gvi[c * H + h] += gvj[c * H + h] * phi[H + h];
                gphi[H + h] += gvj[c * H + h] * vi[c * H + h];
                gphi[2 * H + h] += gvj[c * H + h] * g->u[c];
                gu[3 * ed + c] += gvj[c * H + h] * phi[2 * H + h];
            }
        }
        /* through phi = W2 silu(W1 e + b1) + b2 */
        memset(ga1, 0, sizeof(double) * H);
        linear_backward(ly->W2, 3 * H, H, gphi, ga1);
        for (int h = 0; h < H; h++) ga1[h] *= silu_grad(h1[h]);
        linear_backward(ly->W1, H, K, ga1, ge + (size_t)ed * K);
    }
}

/* dE/dx from dE/de and dE/du of every edge; forces = -dE/dx. */
static void geometry_backward(const painn_model *m, const forward_state *st, const double *ge,
                              const double *gu, double *forces)
{
    const int K = m->K;
    memset(forces, 0, sizeof(double) * 3 * st->n_atoms);
    for (int ed = 0; ed < st->n_edges; ed++) {
        const edge *g = &st->edges[ed];
        double d = g->d, fc = st->fc[ed];
        double dfc = d < m->cutoff ? -0.5 * M_PI / m->cutoff * sin(M_PI * d / m->cutoff) : 0.0;
        /* e_k = rbf_k fc: de_k/dd = rbf_k (-2 (d - c_k) / w_k^2) fc + rbf_k dfc */
        double gd = 0.0;
        for (int k = 0; k < K; k++) {
            double rbf = st->rbf[(size_t)ed * K + k];
            double w2 = m->rbf_widths[k] * m->rbf_widths[k];
            double drbf = rbf * (-2.0 * (d - m->rbf_centers[k]) / w2);
            gd += ge[(size_t)ed * K + k] * (drbf * fc + rbf * dfc);
        }
        /* u = r / (d + eps): du/dr = I / (d + eps) - r r^T / (d (d + eps)^2) */
        const double *gue = gu + 3 * ed;
        double rg = g->r[0] * gue[0] + g->r[1] * gue[1] + g->r[2] * gue[2];
        double de = d + U_EPS;
        for (int c = 0; c < 3; c++) {
            double gr = gue[c] / de;
            if (d > 0.0) gr += g->r[c] * (gd / d - rg / (d * de * de));
            /* r = x_i - x_j */
            forces[3 * g->src + c] -= gr;
            forces[3 * g->dst + c] += gr;
        }
    }
}

/* ---- state lifetime ---- */

static void state_free(forward_state *st, int L)
{
    free(st->edges);
    free(st->rbf);
    free(st->e);
    free(st->fc);
    double **per_layer[] = {st->s_in, st->v_in, st->s_mid, st->v_mid,
                            st->norm, st->hu,   st->upd,   st->mixed};
    for (size_t a = 0; a < sizeof per_layer / sizeof *per_layer; a++) {
        if (!per_layer[a]) continue;
        for (int l = 0; l < L; l++) free(per_layer[a][l]);
        free(per_layer[a]);
    }
    free(st->s_final);
    free(st->z5);
    free(st->z6);
}

static double **alloc_per_layer(int L, size_t n, int *ok)
{
    double **p = calloc((size_t)L, sizeof(double *));
    if (!p) {
        *ok = 0;
        return NULL;
    }
    for (int l = 0; l < L; l++) {
        p[l] = calloc(n + 1, sizeof(double));
        if (!p[l]) *ok = 0;
    }
    return p;
}

static int state_alloc(const painn_model *m, forward_state *st, dm_error *err)
{
    const size_t n = (size_t)st->n_atoms, H = (size_t)m->H, E = (size_t)st->n_edges;
    int ok = 1;
    st->rbf = calloc(E * m->K + 1, sizeof(double));
    st->e = calloc(E * m->K + 1, sizeof(double));
    st->fc = calloc(E + 1, sizeof(double));
    st->s_in = alloc_per_layer(m->L, n * H, &ok);
    st->v_in = alloc_per_layer(m->L, n * 3 * H, &ok);
    st->s_mid = alloc_per_layer(m->L, n * H, &ok);
    st->v_mid = alloc_per_layer(m->L, n * 3 * H, &ok);
    st->norm = alloc_per_layer(m->L, n * H, &ok);
    st->hu = alloc_per_layer(m->L, n * H, &ok);
    st->upd = alloc_per_layer(m->L, n * 3 * H, &ok);
    st->mixed = alloc_per_layer(m->L, n * 3 * H, &ok);
    st->s_final = calloc(n * H + 1, sizeof(double));
    st->z5 = calloc(n * H / 2 + 1, sizeof(double));
    st->z6 = calloc(n * H / 4 + 1, sizeof(double));
    if (!ok || !st->rbf || !st->e || !st->fc || !st->s_final || !st->z5 || !st->z6)
        return dm_fail(err, "out of memory for %zu atoms and %zu edges", n, E);
    return 0;
}

/* ---- the whole model ---- */

static void forward(const painn_model *m, const molecule_batch *b, forward_state *st,
                    double *energies, double *scratch)
{
    const int H = m->H, L = m->L;
    radial_basis(m, st);
    for (int j = 0; j < st->n_atoms; j++) {
        int z = b->species[j];
        memcpy(st->s_in[0] + (size_t)j * H, m->embedding + (size_t)z * H, sizeof(double) * H);
    }
    for (int l = 0; l < L; l++) {
        const painn_layer *ly = &m->layers[l];
        double *s_out = l + 1 < L ? st->s_in[l + 1] : st->s_final;
        double *v_out = l + 1 < L ? st->v_in[l + 1] : NULL;
        message_forward(m, ly, st, st->s_in[l], st->v_in[l], st->s_mid[l], st->v_mid[l], scratch);
        update_forward(m, ly, st->n_atoms, st->s_mid[l], st->v_mid[l], st->norm[l], st->hu[l],
                       st->upd[l], st->mixed[l], s_out, v_out, scratch);
    }
    readout_forward(m, b, st, energies, scratch);
}

static int backward(const painn_model *m, forward_state *st, double *forces, double *scratch,
                    dm_error *err)
{
    const size_t n = (size_t)st->n_atoms, H = (size_t)m->H, E = (size_t)st->n_edges;
    double *gs = calloc(n * H + 1, sizeof(double)), *gv = calloc(n * 3 * H + 1, sizeof(double));
    double *gs2 = calloc(n * H + 1, sizeof(double)), *gv2 = calloc(n * 3 * H + 1, sizeof(double));
    double *ge = calloc(E * m->K + 1, sizeof(double)), *gu = calloc(E * 3 + 1, sizeof(double));
    int rc = 0;
    if (!gs || !gv || !gs2 || !gv2 || !ge || !gu) {
        rc = dm_fail(err, "out of memory for the reverse pass (%zu atoms)", n);
    } else {
        readout_backward(m, st, gs, scratch);
        for (int l = m->L - 1; l >= 0; l--) {
            update_backward(m, &m->layers[l], st, l, gs, gv, scratch);
            message_backward(m, &m->layers[l], st, l, gs, gv, gs2, gv2, ge, gu, scratch);
            double *t = gs;
            gs = gs2;
            gs2 = t;
            t = gv;
            gv = gv2;
            gv2 = t;
        }
        geometry_backward(m, st, ge, gu, forces);
    }
    free(gs);
    free(gv);
    free(gs2);
    free(gv2);
    free(ge);
    free(gu);
    return rc;
}

int painn_reference_compute(const painn_model *m, const molecule_batch *b,
                            const double *positions, double *energies, double *forces,
                            dm_error *err)
{
    for (int j = 0; j < b->n_atoms; j++)
        if (b->species[j] < 0 || b->species[j] >= PAINN_N_ELEMENTS)
            return dm_fail(err, "atom %d has atomic number %d; the model covers Z = 0..%d", j,
                           b->species[j], PAINN_N_ELEMENTS - 1);
    forward_state st = {.n_atoms = b->n_atoms};
    /* scratch for one edge or atom: enough for every helper above */
    double *scratch = malloc(sizeof(double) * (12 * (size_t)m->H + 16));
    int rc = scratch ? 0 : dm_fail(err, "out of memory");
    if (rc == 0) rc = build_edges(m, b, positions, &st, err);
    if (rc == 0) rc = state_alloc(m, &st, err);
    if (rc == 0) {
        forward(m, b, &st, energies, scratch);
        if (forces) rc = backward(m, &st, forces, scratch, err);
    }
    state_free(&st, m->L);
    free(scratch);
    return rc;
}
