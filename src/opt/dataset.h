/* A folder of input samples on disk, shared by `inferd eval` and `inferd quantize --calibration`.
 *
 * Layout (checked against the model's inputs when opened):
 *   - one input: every .npy file directly in DIR (sorted by file name) is one batch of that
 *     input; dim 0 is the batch and may differ from file to file;
 *   - several inputs: every subfolder DIR/<sample>/ (sorted by name) is one batch and holds
 *     <input>.npy for each input (the name with characters outside [A-Za-z0-9._-] as '_', as
 *     `inferd run -o` writes them); or, alternatively, DIR/<input>.npy for each input, one batch
 *     holding every sample along dim 0.
 * .npy files directly in DIR choose the flat layouts (subfolders are then not read); a folder
 * without them is read as one subfolder per batch, whatever the number of inputs.
 * Hidden entries and files not ending in .npy are skipped; in the named layouts a .npy file that
 * is not named after an input is an error (a misspelt name would otherwise be silently unused).
 * Files whose dtype, rank or fixed dims do not fit the input are an error naming the file.
 * Every file is read into memory at open: the folder is meant to fit in RAM. */
#ifndef IFD_OPT_DATASET_H
#define IFD_OPT_DATASET_H

#include "inferd/inferd.h"

typedef struct ifd_dataset ifd_dataset;

ifd_status ifd_dataset_open(const char *dir, size_t n_inputs, const ifd_io_info *inputs,
                            ifd_dataset **out);
/* Number of batches. */
size_t ifd_dataset_count(const ifd_dataset *d);
/* Batch i: n_inputs tensors in the model's input order (borrowed until ifd_dataset_free). */
const ifd_tensor *const *ifd_dataset_batch(const ifd_dataset *d, size_t i);
/* Input names in model order, for ifd_session_run (borrowed). */
const char *const *ifd_dataset_input_names(const ifd_dataset *d);
/* Samples in batch i: dim 0 of the first input of rank >= 1 (1 when every input is a scalar). */
int64_t ifd_dataset_batch_rows(const ifd_dataset *d, size_t i);
/* Samples in all batches together. */
int64_t ifd_dataset_total_rows(const ifd_dataset *d);
void ifd_dataset_free(ifd_dataset *d);

#endif
