/* pth.h: PyTorch checkpoints (torch.save of a state_dict) read without Python and without
 * running anything in them, as tools/pth2safetensors.py reads them: both container formats,
 *  - zip (PyTorch >= 1.6): <name>/data.pkl, <name>/data/<key> storage records, <name>/byteorder
 *    (read with libzip);
 *  - legacy (PyTorch < 1.6, the official AttnGAN files of 2018): the magic number, protocol
 *    version and sys-info pickles, the object pickle, the storage key list, then each storage
 *    as an int64 element count and its raw little-endian bytes.
 * The object pickle goes through pickle.h's reader with PICKLE_TORCH: only OrderedDict, the
 * tensor rebuilders, torch.Size and the torch.*Storage types are accepted; any other global
 * (os.system, a model class) stops it, named. Tensor views (offsets, strides, shared or legacy
 * view storages) are gathered into contiguous tensors. */
#ifndef ATTNGAN_PTH_H
#define ATTNGAN_PTH_H

/* Converts the state_dict in `pth` to a safetensors file `out` (written atomically): floating
 * tensors as F32, integer ones as I64, bool as BOOL, in the dict's order, with metadata
 * {"source": <pth's base name>, "format": "pt"} as tools/pth2safetensors.py writes. Entries that
 * are not tensors are skipped; a dict of state_dicts is refused, naming its keys. 0, or -1 with
 * err_msg() naming the file and the fault. */
int pth_to_safetensors(const char *pth, const char *out);

/* 1 if the file starts as a torch.save checkpoint (zip or legacy pickle), 0 if not (for
 * example a safetensors file), -1 if it cannot be read (err_msg() set). */
int pth_sniff(const char *path);

#endif
