/*===- kiln_runtime.h - C API of the Kiln runtime -----------------*- C -*-===*\
|*                                                                            *|
|* Open a Kiln artifact directory (docs/artifacts.md) and run its entry       *|
|* points from C or through an FFI. A thin layer over kiln/Runtime/Artifact.h.*|
|*                                                                            *|
|* Errors: functions returning a pointer return NULL, functions returning int *|
|* return nonzero; kiln_last_error() then gives the message (per thread,      *|
|* valid until the next failing call on that thread).                         *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#ifndef KILN_RUNTIME_KILN_RUNTIME_H
#define KILN_RUNTIME_KILN_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Element types, numbered as kiln::runtime::DType. */
typedef enum kiln_dtype {
  KILN_F64 = 0,
  KILN_F32 = 1,
  KILN_F16 = 2,
  KILN_BF16 = 3,
  KILN_I64 = 4,
  KILN_I32 = 5,
  KILN_I16 = 6,
  KILN_I8 = 7,
  KILN_U8 = 8,
  KILN_BOOL = 9
} kiln_dtype;

/* The safetensors name ("F32", ...), or NULL for an unknown value. */
const char *kiln_dtype_name(int dtype);
/* Bytes per element, 0 for an unknown value. */
size_t kiln_dtype_size(int dtype);

/* The message of the last failing call on this thread ("" if none). */
const char *kiln_last_error(void);

typedef struct kiln_artifact kiln_artifact;

/* Opens an artifact directory; NULL on error. */
kiln_artifact *kiln_artifact_open(const char *dir);
/* Closes it (NULL is allowed). Tensors it returned stay valid. */
void kiln_artifact_close(kiln_artifact *artifact);

/* Entry points and their inputs and outputs, in manifest order. Names are
   owned by the artifact. Out-of-range indices give 0 / NULL. */
size_t kiln_artifact_num_entry_points(const kiln_artifact *artifact);
const char *kiln_artifact_entry_point_name(const kiln_artifact *artifact,
                                           size_t index);
/* The number of inputs / outputs of entry point `entry`, or -1 if unknown. */
int64_t kiln_entry_num_inputs(const kiln_artifact *artifact,
                              const char *entry);
int64_t kiln_entry_num_outputs(const kiln_artifact *artifact,
                               const char *entry);
const char *kiln_entry_input_name(const kiln_artifact *artifact,
                                  const char *entry, size_t index);
const char *kiln_entry_output_name(const kiln_artifact *artifact,
                                   const char *entry, size_t index);

/* A dense row-major input the caller owns. */
typedef struct kiln_tensor_view {
  const char *name; /* the entry point's input name */
  int dtype;        /* a kiln_dtype */
  size_t rank;
  const int64_t *shape; /* rank dims */
  const void *data;
} kiln_tensor_view;

/* A result; free it with kiln_tensor_free. */
typedef struct kiln_tensor kiln_tensor;

/* Runs `entry` on `inputs` (each declared input exactly once, by name).
   On success stores kiln_entry_num_outputs() tensors, in manifest order,
   in outputs[0 .. num_outputs), which must be exactly that many, and returns
   0. On error returns nonzero and stores nothing. */
int kiln_run(const kiln_artifact *artifact, const char *entry,
             const kiln_tensor_view *inputs, size_t num_inputs,
             kiln_tensor **outputs, size_t num_outputs);

int kiln_tensor_dtype(const kiln_tensor *tensor);
size_t kiln_tensor_rank(const kiln_tensor *tensor);
const int64_t *kiln_tensor_shape(const kiln_tensor *tensor);
const void *kiln_tensor_data(const kiln_tensor *tensor);
size_t kiln_tensor_byte_size(const kiln_tensor *tensor);
void kiln_tensor_free(kiln_tensor *tensor);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_RUNTIME_KILN_RUNTIME_H */
