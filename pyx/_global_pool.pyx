# cython: boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
# (the same directives setup.py sets; repeated here so that a plain `cython -a` shows what the
# build compiles. POOLKIT_CYTHON_DEBUG=1 builds strip this line to turn the checks back on.)
"""Global average and global max pooling kernels, forward and backward.

Layout handed in by the facade: ``(P, HW)`` C-contiguous flattened planes, ``P = N * C``,
``HW >= 1``; scratch arrays of ``P * n_chunks(HW)`` entries allocated there too, read only
when ``P < PLANES_PER_THREAD * n_threads`` (otherwise they may be None: a memoryview of an
array costs about 0.3 us a call to acquire).

Each plane is cut into *chunks* of at most ``CHUNK`` consecutive elements, always at the same
places (``k * CHUNK``), whatever the thread count; a plane's result is its chunks' partial
results folded in chunk order. With several planes per thread, ``prange`` runs over planes and
each thread folds its planes' chunks as it goes (one parallel region: on a busy machine every
extra fork/join of the team costs a descheduled thread's time slice). For the average, when the
whole input fits the threads' L2 caches, the planes are split statically, so that a layer
called again on the same activations finds each plane in the cache of the thread that read it
last. With few large planes it runs over the ``(plane, chunk)`` pairs, so every thread stays
busy, writing partial results to scratch, and a second, cheap pass folds them. Every result is
therefore a fixed function of the input: bitwise the same for any thread count and either split.
"""

from _openmp_helpers cimport dynamic_chunk
from cython.parallel cimport prange
from libc.string cimport memset

from _typedefs cimport floating, intp_t, index_t
from _reduce_helpers cimport pk_sum_f, pk_sum_d, pk_argmax_f, pk_argmax_d

# Elements per chunk: 16 KiB of float32, small enough that the argmax's second pass reads from
# L1, large enough that the per-chunk bookkeeping is noise next to the data.
cdef intp_t _CHUNK = 4096
CHUNK = _CHUNK
# With at least this many planes per thread, threads take whole planes (one parallel region,
# no scratch); with fewer, they take chunks. Both give bitwise the same results.
cdef intp_t _PLANES_PER_THREAD = 4
PLANES_PER_THREAD = _PLANES_PER_THREAD
# Inputs of at most this many bytes per thread take the static split of whole planes: the L2
# cache of one core here (AMD Zen 3: 512 KiB). With the dynamic split, a thread took other
# planes on every call and read them from L3: global average of (1, 64, 56, 56) float32 with 2
# threads, kernel alone, 13 -> 11 us (min), 15 -> 12 us (median). Larger inputs come from L3
# or memory either way and keep the dynamic split (which absorbs a descheduled thread).
cdef intp_t _STATIC_BYTES_PER_THREAD = 512 * 1024


cdef inline bint _static_split(intp_t P, intp_t HW, intp_t itemsize,
                               int n_threads) noexcept nogil:
    return P * HW <= _STATIC_BYTES_PER_THREAD // itemsize * n_threads


cdef inline double _plane_sum(const floating *xp, intp_t HW, intp_t nch) noexcept nogil:
    """The sum of one plane in double: its chunks' sums folded in chunk order."""
    cdef double s = 0.0
    cdef intp_t k, lo
    for k in range(nch):
        lo = k * _CHUNK
        if floating is float:
            s = s + pk_sum_f(xp + lo, min(_CHUNK, HW - lo))
        else:
            s = s + pk_sum_d(xp + lo, min(_CHUNK, HW - lo))
    return s


cdef inline int _check_scratch(intp_t P, intp_t nch, int n_threads,
                               intp_t n_scratch) except -1:
    """A kernel that will split planes into chunks needs scratch arrays of ``P * nch`` entries
    (-1: one is None). The facade passes them; this guards a direct call."""
    if P < _PLANES_PER_THREAD * n_threads and n_scratch < P * nch:
        raise ValueError(f"scratch arrays of {P * nch} entries are needed, got {n_scratch}")
    return 0


def n_chunks(intp_t hw):
    """Number of chunks a plane of ``hw`` elements is cut into (the scratch size per plane)."""
    return (hw + _CHUNK - 1) // _CHUNK


def global_avg_pool2d_forward(
    const floating[:, ::1] x not None,   # IN  (P, HW)
    floating[::1] out not None,           # OUT (P,)
    double[::1] partial,                  # SCRATCH (P * n_chunks(HW),) or None (see above)
    int n_threads,
):
    """``out[p] = sum(x[p]) / HW``, the sum taken in double (see _reduce_helpers.pxd)."""
    cdef:
        intp_t P = x.shape[0], HW = x.shape[1]
        intp_t nch = (HW + _CHUNK - 1) // _CHUNK
        intp_t t, p, k, lo, n
        double s

    _check_scratch(P, nch, n_threads, partial.shape[0] if partial is not None else -1)

    with nogil:
        if P >= _PLANES_PER_THREAD * n_threads and _static_split(P, HW, sizeof(floating),
                                                                 n_threads):
            # Enough planes, all in the threads' caches: one thread per plane, its chunks in
            # order (one parallel region), the same planes to the same thread every call.
            for p in prange(P, schedule="static", num_threads=n_threads):
                out[p] = <floating> (_plane_sum(&x[p, 0], HW, nch) / <double> HW)
        elif P >= _PLANES_PER_THREAD * n_threads:
            # Enough planes: the same, planes handed out as threads come free.
            for p in prange(P, schedule="dynamic", num_threads=n_threads,
                            chunksize=dynamic_chunk(P, n_threads)):
                out[p] = <floating> (_plane_sum(&x[p, 0], HW, nch) / <double> HW)
        else:
            # Few large planes: chunks in parallel, then each plane folds its partial sums
            # in the same order as above (bitwise the same result).
            for t in prange(P * nch, schedule="dynamic", num_threads=n_threads,
                            chunksize=dynamic_chunk(P * nch, n_threads)):
                p = t // nch
                lo = (t - p * nch) * _CHUNK
                n = min(_CHUNK, HW - lo)
                if floating is float:
                    partial[t] = pk_sum_f(&x[p, lo], n)
                else:
                    partial[t] = pk_sum_d(&x[p, lo], n)
            for p in prange(P, schedule="dynamic", num_threads=n_threads,
                            chunksize=dynamic_chunk(P, n_threads)):
                s = 0.0
                for k in range(nch):
                    s = s + partial[p * nch + k]
                out[p] = <floating> (s / <double> HW)


def global_avg_pool2d_backward(
    const floating[::1] grad_output not None,   # IN  (P,)
    floating[:, ::1] grad_input not None,        # OUT (P, HW)
    int n_threads,
):
    """``grad_input[p, :] = grad_output[p] / HW`` (divided in double, rounded once)."""
    cdef:
        intp_t P = grad_input.shape[0], HW = grad_input.shape[1]
        intp_t nch = (HW + _CHUNK - 1) // _CHUNK
        intp_t t, p, i, lo, n
        floating v
        floating *gip

    with nogil:
        for t in prange(P * nch, schedule="dynamic", num_threads=n_threads,
                        chunksize=dynamic_chunk(P * nch, n_threads)):
            p = t // nch
            lo = (t - p * nch) * _CHUNK
            n = min(_CHUNK, HW - lo)
            v = <floating> (<double> grad_output[p] / <double> HW)
            gip = &grad_input[p, lo]
            for i in range(n):
                gip[i] = v


def global_max_pool2d_forward(
    const floating[:, ::1] x not None,   # IN  (P, HW)
    floating[::1] out not None,           # OUT (P,)
    index_t[::1] indices not None,        # OUT (P,)   flat h * W + w of the winner
    floating[::1] part_v,                 # SCRATCH (P * n_chunks(HW),) or None (see above)
    index_t[::1] part_i,                  # SCRATCH (P * n_chunks(HW),) or None
    int n_threads,
):
    """Maximum of each plane and the position of its first occurrence (or of the first NaN)."""
    cdef:
        intp_t P = x.shape[0], HW = x.shape[1]
        intp_t nch = (HW + _CHUNK - 1) // _CHUNK
        intp_t t, p, k, lo, n, j
        index_t at
        floating v, w

    _check_scratch(P, nch, n_threads, min(part_v.shape[0] if part_v is not None else -1,
                                          part_i.shape[0] if part_i is not None else -1))

    # Chunks are folded in order with the rule of the max kernels (a later chunk wins only
    # when strictly greater, or when it brings the first NaN): the result is the first
    # maximum, or the first NaN, of the whole plane, whichever way the work is split.
    # (Whole planes are always handed out dynamically here: the argmax is compute-bound, and
    # the global average's static split for inputs in cache measured no faster for it.)
    with nogil:
        if P >= _PLANES_PER_THREAD * n_threads:
            for p in prange(P, schedule="dynamic", num_threads=n_threads,
                            chunksize=dynamic_chunk(P, n_threads)):
                for k in range(nch):
                    lo = k * _CHUNK
                    if floating is float:
                        j = lo + pk_argmax_f(&x[p, lo], min(_CHUNK, HW - lo))
                    else:
                        j = lo + pk_argmax_d(&x[p, lo], min(_CHUNK, HW - lo))
                    w = x[p, j]
                    if k == 0 or w > v or (w != w and v == v):
                        v = w
                        at = j
                out[p] = v
                indices[p] = at
        else:
            for t in prange(P * nch, schedule="dynamic", num_threads=n_threads,
                            chunksize=dynamic_chunk(P * nch, n_threads)):
                p = t // nch
                lo = (t - p * nch) * _CHUNK
                n = min(_CHUNK, HW - lo)
                if floating is float:
                    j = pk_argmax_f(&x[p, lo], n)
                else:
                    j = pk_argmax_d(&x[p, lo], n)
                part_i[t] = lo + j
                part_v[t] = x[p, lo + j]
            for p in prange(P, schedule="dynamic", num_threads=n_threads,
                            chunksize=dynamic_chunk(P, n_threads)):
                v = part_v[p * nch]
                at = part_i[p * nch]
                for k in range(1, nch):
                    w = part_v[p * nch + k]
                    if w > v or (w != w and v == v):
                        v = w
                        at = part_i[p * nch + k]
                out[p] = v
                indices[p] = at


def global_max_pool2d_backward(
    const floating[::1] grad_output not None,   # IN  (P,)
    const index_t[::1] indices not None,         # IN  (P,)   each in [0, HW): facade-checked
    floating[:, ::1] grad_input not None,        # OUT (P, HW)
    int n_threads,
):
    """Zero every plane, then put ``grad_output[p]`` at ``indices[p]``."""
    cdef:
        intp_t P = grad_input.shape[0], HW = grad_input.shape[1]
        intp_t nch = (HW + _CHUNK - 1) // _CHUNK
        intp_t t, p, lo, n, at

    with nogil:
        for t in prange(P * nch, schedule="dynamic", num_threads=n_threads,
                        chunksize=dynamic_chunk(P * nch, n_threads)):
            p = t // nch
            lo = (t - p * nch) * _CHUNK
            n = min(_CHUNK, HW - lo)
            memset(&grad_input[p, lo], 0, n * sizeof(floating))
            at = indices[p]
            if lo <= at < lo + n:
                grad_input[p, at] = grad_output[p]
