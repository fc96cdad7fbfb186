# Shared type names for every poolkit kernel (the habit of scikit-learn's utils/_typedefs.pxd).

from libc.stdint cimport int64_t, uint8_t

ctypedef fused floating:
    float
    double

ctypedef Py_ssize_t intp_t
ctypedef int64_t index_t    # argmax indices handed to users: flat h * W + w in the input plane
