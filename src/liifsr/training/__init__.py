"""Training: `liifsr train CONFIG --out DIR`, LIIF's training loop, resumable and distributed.

L1 loss on normalised RGB ((x - 0.5) / 0.5, LIIF's data_norm), Adam, a per-epoch
schedule (MultiStepLR, or cosine), validation PSNR (RGB, shave = scale) every
`val_every` epochs.

Files in OUT:
    last.safetensors         the weights after the last epoch: the run's result, the
                             checkpoint LIIF reports (`liifsr upscale --model` reads it)
    best.safetensors         the weights with the best mean validation PSNR so far, on
                             the held-out images (never a benchmark set)
    last.state.safetensors   everything `--resume` needs: model, Adam state, scheduler
                             progress, RNG states, epoch, best PSNR, as tensors plus JSON
                             metadata, so loading it never runs code
    log.csv                  one row per epoch (epoch, lr, train_loss, val_psnr, seconds...);
                             the state file holds the same rows, and a resume rewrites
                             log.csv from them, so a stop between writing the two loses
                             no row and repeats none
    tensorboard/             TensorBoard event files
    config.yaml              the resolved config of the run (its data folders absolute)

Every file is written atomically (temporary file, then os.replace). Resuming restores
the exact state after the last saved epoch, and the data of every sample depends only
on (seed, epoch, index) (see liifsr.data), so an interrupted and resumed run ends with
the same weights as an uninterrupted one on the same device and thread count.

Distributed: `torchrun --nproc_per_node N -m liifsr train ...` runs N processes
(DistributedDataParallel; NCCL on GPUs, gloo on CPUs). `batch_size` stays the global
batch; each process takes batch_size / N samples of the same global batches, and only
process 0 writes logs and checkpoints.

    config.py       TrainConfig (the YAML) and its checks
    loop.py         the epochs: steps, validation, checkpoints (`train`)
    state.py        the resumable state (`save_state`, `load_state`)
    runlog.py       log.csv, TensorBoard, and the run reader (`read_run`) tools share
    distributed.py  processes, devices and reductions
    runfolder.py    the run folder: checked, made and locked while a run owns it

The command itself is `liifsr.commands.train`.
"""
