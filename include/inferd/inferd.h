/*
 * inferd: an ONNX model runtime and server.
 *
 * Usage, in five calls:
 *
 *     ifd_model *model = NULL;
 *     ifd_session *session = NULL;
 *     if (ifd_model_load_file("model.onnx", &model) != IFD_OK)
 *         fprintf(stderr, "%s\n", ifd_last_error());
 *     ifd_session_options opts;
 *     ifd_session_options_init(&opts);
 *     opts.num_threads = 2;
 *     ifd_session_create(model, &opts, &session);
 *     // inputs: ifd_tensor_create(IFD_DTYPE_FLOAT, rank, dims, &t) and fill ifd_tensor_data(t)
 *     ifd_session_run(session, n_in, in_names, in_tensors, n_out, out_names, out_tensors);
 *     ...
 *     ifd_session_free(session);   // a session may outlive its model's handle? no: free sessions first
 *     ifd_model_free(model);
 *
 * Every function that can fail returns an ifd_status. IFD_OK is 0. On failure,
 * ifd_last_error() returns a message (per calling thread) naming the node, input,
 * field or file at fault; ifd_status_string() names the code itself.
 *
 * Handles are opaque; each *_create or *_load has a matching *_free, and free(NULL)
 * is a no-op. A session may be run from one thread at a time; create one session per
 * concurrent caller (sessions share the model's weights).
 */
#ifndef INFERD_INFERD_H
#define INFERD_INFERD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IFD_VERSION_STRING "0.1.0"

/* X-macro: code, value, description. The only list of status codes. */
#define IFD_STATUS_LIST(X)                                                       \
    X(IFD_OK, 0, "ok")                                                           \
    X(IFD_ERR_INVALID_ARGUMENT, 1, "invalid argument")                           \
    X(IFD_ERR_CORRUPT_MODEL, 2, "corrupt or invalid model")                      \
    X(IFD_ERR_UNSUPPORTED, 3, "unsupported feature")                             \
    X(IFD_ERR_TOO_BIG, 4, "size limit exceeded")                                 \
    X(IFD_ERR_NO_MEMORY, 5, "out of memory")                                     \
    X(IFD_ERR_IO, 6, "i/o error")                                                \
    X(IFD_ERR_NOT_FOUND, 7, "not found")                                         \
    X(IFD_ERR_SHAPE, 8, "shape mismatch")                                        \
    X(IFD_ERR_INTERNAL, 9, "internal error")

typedef enum ifd_status {
#define IFD_STATUS_ENUM_(name, value, text) name = value,
    IFD_STATUS_LIST(IFD_STATUS_ENUM_)
#undef IFD_STATUS_ENUM_
        IFD_STATUS_COUNT
} ifd_status;

/* Name and meaning of a status code, e.g. "IFD_ERR_CORRUPT_MODEL: corrupt or invalid model". */
const char *ifd_status_string(ifd_status status);
/* Detail message of the last failure on this thread ("" when none). */
const char *ifd_last_error(void);

/* Element types: the values are ONNX's TensorProto.DataType values. */
typedef enum ifd_dtype {
    IFD_DTYPE_UNDEFINED = 0,
    IFD_DTYPE_FLOAT = 1,
    IFD_DTYPE_UINT8 = 2,
    IFD_DTYPE_INT8 = 3,
    IFD_DTYPE_UINT16 = 4,
    IFD_DTYPE_INT16 = 5,
    IFD_DTYPE_INT32 = 6,
    IFD_DTYPE_INT64 = 7,
    IFD_DTYPE_STRING = 8,
    IFD_DTYPE_BOOL = 9,
    IFD_DTYPE_FLOAT16 = 10,
    IFD_DTYPE_DOUBLE = 11,
    IFD_DTYPE_UINT32 = 12,
    IFD_DTYPE_UINT64 = 13,
    IFD_DTYPE_COMPLEX64 = 14,
    IFD_DTYPE_COMPLEX128 = 15,
    IFD_DTYPE_BFLOAT16 = 16,
    IFD_DTYPE_FLOAT8E4M3FN = 17,
    IFD_DTYPE_FLOAT8E4M3FNUZ = 18,
    IFD_DTYPE_FLOAT8E5M2 = 19,
    IFD_DTYPE_FLOAT8E5M2FNUZ = 20,
    IFD_DTYPE_UINT4 = 21,
    IFD_DTYPE_INT4 = 22,
    IFD_DTYPE_FLOAT4E2M1 = 23,
    IFD_DTYPE_FLOAT8E8M0 = 24,
    IFD_DTYPE_UINT2 = 25,
    IFD_DTYPE_INT2 = 26,
    IFD_DTYPE_COUNT
} ifd_dtype;

/* "float32", "int64", ... (NumPy-style names); "undefined" for unknown values. */
const char *ifd_dtype_name(ifd_dtype dtype);
/* Bytes per element in memory. Sub-byte types (int4, uint4, float4, int2, uint2) are held
 * unpacked, one element per byte; they are packed only in files. 0 for string/unknown. */
size_t ifd_dtype_size(ifd_dtype dtype);

/* ---- tensors ------------------------------------------------------------------------- */

#define IFD_MAX_RANK 16

typedef struct ifd_tensor ifd_tensor;

/* A new tensor with zeroed, owned storage. dims may be NULL when rank is 0. */
ifd_status ifd_tensor_create(ifd_dtype dtype, int rank, const int64_t *dims, ifd_tensor **out);
/* A tensor that borrows caller memory (not freed by ifd_tensor_free); nbytes is checked. */
ifd_status ifd_tensor_wrap(ifd_dtype dtype, int rank, const int64_t *dims, void *data,
                           size_t nbytes, ifd_tensor **out);
void ifd_tensor_free(ifd_tensor *tensor);
ifd_dtype ifd_tensor_dtype(const ifd_tensor *tensor);
int ifd_tensor_rank(const ifd_tensor *tensor);
const int64_t *ifd_tensor_dims(const ifd_tensor *tensor);
int64_t ifd_tensor_count(const ifd_tensor *tensor);
size_t ifd_tensor_nbytes(const ifd_tensor *tensor);
void *ifd_tensor_data(ifd_tensor *tensor);
const void *ifd_tensor_cdata(const ifd_tensor *tensor);

/* String tensors (IFD_DTYPE_STRING): every element is a byte string (any bytes, NUL included)
 * owned by the tensor. ifd_tensor_create makes every element the empty string;
 * ifd_tensor_data/ifd_tensor_cdata return the element array (ifd_string below), read-only for
 * callers: set elements with ifd_tensor_set_string. ifd_tensor_nbytes is the sum of the string
 * lengths (what a caller must budget to copy them out). ifd_tensor_wrap refuses the string
 * type (the tensor must own its strings). */
typedef struct ifd_string {
    const char *data; /* len bytes, then a NUL; NULL for an empty element */
    size_t len;
} ifd_string;
/* Copy len bytes (NULL allowed when len is 0) into element index of a string tensor, replacing
 * what was there. Errors: not a string tensor, index out of range, bytes NULL with len > 0. */
ifd_status ifd_tensor_set_string(ifd_tensor *t, int64_t index, const void *bytes, size_t len);
/* Element index of a string tensor: pointer to its bytes (NUL-terminated for convenience, the
 * length is what counts; "" for an empty element) and *len (len may be NULL); NULL when t is
 * not a string tensor or index is out of range. Valid until the element is set again or the
 * tensor is freed. */
const char *ifd_tensor_get_string(const ifd_tensor *t, int64_t index, size_t *len);

/* NumPy .npy files (versions 1-3, little-endian, C order). */
ifd_status ifd_npy_read(const char *path, ifd_tensor **out);
ifd_status ifd_npy_read_memory(const void *data, size_t size, ifd_tensor **out);
ifd_status ifd_npy_write(const char *path, const ifd_tensor *tensor);
/* A serialized onnx.TensorProto (.pb), as the ONNX test data stores tensors. */
ifd_status ifd_tensorproto_read(const char *path, ifd_tensor **out);

/* ---- models ---------------------------------------------------------------------------- */

typedef struct ifd_model ifd_model;

/* Load and validate an ONNX model. External data resolves inside the file's folder. */
ifd_status ifd_model_load_file(const char *path, ifd_model **out);
/* Same from memory; base_dir is where external data lives (NULL: external data refused). */
ifd_status ifd_model_load_memory(const void *data, size_t size, const char *base_dir,
                                 ifd_model **out);
void ifd_model_free(ifd_model *model);

/* Describes one graph input or output. dims[i] < 0 is a symbolic or unknown dim whose name,
 * if any, is dim_names[i]. rank < 0 means the rank is unknown. Strings live as long as the
 * model or session they came from. */
typedef struct ifd_io_info {
    const char *name;
    ifd_dtype dtype;
    int rank;
    int64_t dims[IFD_MAX_RANK];
    const char *dim_names[IFD_MAX_RANK];
} ifd_io_info;

size_t ifd_model_input_count(const ifd_model *model);
size_t ifd_model_output_count(const ifd_model *model);
ifd_status ifd_model_input_info(const ifd_model *model, size_t index, ifd_io_info *out);
ifd_status ifd_model_output_info(const ifd_model *model, size_t index, ifd_io_info *out);

/* Facts for `inferd inspect`. */
typedef struct ifd_model_summary {
    int64_t ir_version;
    const char *producer_name;
    const char *producer_version;
    size_t opset_count;
    const char *opset_domains[16];
    int64_t opset_versions[16];
    size_t node_count;     /* top-level graph nodes */
    int64_t param_count;   /* elements in initializers */
    int64_t param_bytes;   /* bytes in initializers */
} ifd_model_summary;
void ifd_model_summary_get(const ifd_model *model, ifd_model_summary *out);
/* Operator histogram over all graphs (subgraphs included): op i's "domain:op_type" and count. */
size_t ifd_model_op_kinds(const ifd_model *model);
void ifd_model_op_kind(const ifd_model *model, size_t index, const char **op_type,
                       const char **domain, size_t *count);

/* ---- sessions -------------------------------------------------------------------------- */

typedef struct ifd_session ifd_session;

typedef struct ifd_session_options {
    int num_threads;         /* worker threads including the caller; <= 0 means all cores */
    int optimize;            /* 1 (default): constant folding and fusions; 0: run the graph as is */
    int plan_at_load;        /* 1 (default): when every input shape is fixed, run once on zeros
                                at creation so the memory plan is ready; 0: plan on first run */
} ifd_session_options;

void ifd_session_options_init(ifd_session_options *options);
ifd_status ifd_session_create(const ifd_model *model, const ifd_session_options *options,
                              ifd_session **out);
void ifd_session_free(ifd_session *session);

size_t ifd_session_input_count(const ifd_session *session);
size_t ifd_session_output_count(const ifd_session *session);
ifd_status ifd_session_input_info(const ifd_session *session, size_t index, ifd_io_info *out);
ifd_status ifd_session_output_info(const ifd_session *session, size_t index, ifd_io_info *out);

/* Run the model. inputs[i] is bound to the graph input named input_names[i]; every required
 * graph input must be bound. outputs[j] receives a new tensor (caller frees) for the output
 * named output_names[j]; pass output_names = NULL and n_outputs = ifd_session_output_count()
 * to get every output in graph order. */
ifd_status ifd_session_run(ifd_session *session, size_t n_inputs, const char *const *input_names,
                           const ifd_tensor *const *inputs, size_t n_outputs,
                           const char *const *output_names, ifd_tensor **outputs);

/* Multiply-accumulate count of the last run (Conv, ConvTranspose, Gemm, MatMul and
 * attention-style ops; 2 FLOPs per MAC is the caller's convention to apply). */
int64_t ifd_session_last_run_macs(const ifd_session *session);

/* ---- memory accounting ------------------------------------------------------------------ */

/* Bytes currently held through inferd's accounted allocator, and the peak. */
size_t ifd_memory_in_use(void);
size_t ifd_memory_peak(void);
/* Cap the bytes held through the allocator (0, the default: no cap). An allocation that would
 * pass it fails, and the call that needed it returns IFD_ERR_NO_MEMORY: a model whose
 * attributes ask for absurd tensors gets an error instead of exhausting the machine. */
void ifd_memory_set_limit(size_t bytes);

#ifdef __cplusplus
}
#endif
#endif /* INFERD_INFERD_H */
