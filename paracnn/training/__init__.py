"""How a training run works, one module per role; :mod:`paracnn.train` is its public face.

One optimiser step, from the call to the files::

    paracnn.train.train()           config, run folder, resume; builds a Run
      training.loop.Run             epochs of steps; evaluation, checkpoints,
                                    best.json, early stopping, signals, progress
        training.step.Trainer.step  the step's learning rate; NaN/inf -> TrainingDiverged
          parallel.Engine.step      micro-batches into gradient slots, summed in slot
                                    order, then the update (sliced in the workers)
        <- StepStats                parallel/step_stats.py: counts and where the time went
      training.tally.Tally          adds StepStats up into steps.jsonl rows and
                                    metrics.jsonl records

Modules:

- :mod:`~paracnn.training.loop`: :class:`Run`, the loop over epochs and steps.
- :mod:`~paracnn.training.step`: :class:`Trainer`, a model, its optimiser and an
  Engine: one step at a time (``paracnn profile`` times it).
- :mod:`~paracnn.training.tally`: the running totals of an epoch and their records.
- :mod:`~paracnn.training.early_stopping`: which epoch is best on the validation
  split, and when to stop waiting for a better one.
"""
