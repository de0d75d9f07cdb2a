"""Lesson 18's pitfalls: the training loop, evaluation, early stopping, checkpoints."""

from pitfalls import Mutant

T, C = "tests/test_train_loop.py::", "tests/test_checkpoint.py::"

MUTANTS = [
    Mutant(
        "(loss).backward() per micro-batch without / k",
        "scaler.scale(loss / k).backward()",
        "scaler.scale(loss).backward()",
        "divide each by grad_accum_steps",
        (T + "test_accumulating_k_micro_batches_equals_one_big_batch",),
    ),
    Mutant(
        "optimizer.zero_grad() inside the micro-batch loop",
        "            batch = self._batch(self.step * k + micro)\n",
        "            optimizer.zero_grad(set_to_none=True)\n"
        "            batch = self._batch(self.step * k + micro)\n",
        "only the last micro-batch's gradient was used",
        (T + "test_accumulating_k_micro_batches_equals_one_big_batch",),
    ),
    Mutant(
        "Clipping each micro-batch's gradient",
        "        if self.config.clip_grad_norm is None:\n"
        "            norm = grad_norm(params)\n"
        "        else:\n"
        "            norm = clip_grad_norm_(params, self.config.clip_grad_norm)\n"
        '        lr = optimizer.param_groups[0]["lr"]\n'
        "        scaler.step(optimizer)  # skipped when fp16 gradients overflowed\n",
        "        norm = grad_norm(params)\n"
        '        lr = optimizer.param_groups[0]["lr"]\n'
        "        scaler.step(optimizer)\n"
        "        if self.config.clip_grad_norm is not None:\n"
        "            clip_grad_norm_(params, self.config.clip_grad_norm)\n",
        "the step used the unclipped gradient",
        (T + "test_accumulating_k_micro_batches_equals_one_big_batch",),
    ),
    Mutant(
        "scheduler.step() before optimizer.step()",
        '        lr = optimizer.param_groups[0]["lr"]\n'
        "        scaler.step(optimizer)  # skipped when fp16 gradients overflowed\n"
        "        scaler.update()\n"
        "        if self.scheduler is not None:\n"
        "            self.scheduler.step()  # after optimizer.step(): step t trains with lr(t)\n",
        "        if self.scheduler is not None:\n"
        "            self.scheduler.step()\n"
        '        lr = optimizer.param_groups[0]["lr"]\n'
        "        scaler.step(optimizer)\n"
        "        scaler.update()\n",
        "scheduler.step() comes after optimizer.step()",
        (T + "test_the_lr_of_each_step_follows_the_schedule",),
    ),
    Mutant(
        "Evaluating in train mode (dropout on)",
        "        self.model.eval()\n        try:",
        "        try:",
        "evaluation in eval mode",
        (T + "test_train_mode_for_steps_eval_mode_without_gradients_for_evaluation",),
    ),
    Mutant(
        "value <= best counted as a gain",
        'if best is None or (value < best if config.eval_mode == "min" else value > best):',
        'if best is None or (value <= best if config.eval_mode == "min" else value >= best):',
        "a value equal to the best is no gain",
        (T + "test_early_stopping_keeps_the_best_checkpoint",),
    ),
    Mutant(
        "torch.save straight to path",
        '        with open(temp, "wb") as file:\n'
        "            torch.save(dict(checkpoint), file)\n"
        "            file.flush()\n"
        "            os.fsync(file.fileno())\n"
        "        os.replace(temp, path)\n",
        '        with open(path, "wb") as file:\n            torch.save(dict(checkpoint), file)\n',
        "the previous checkpoint must survive a crash mid-save",
        (C + "test_save_is_atomic_and_leaves_no_temp_file",),
    ),
]
