"""The neural families: each an `nn.Module` plus its config, adapted to the one model interface
by `model.NeuralLM` and trained by the one trainer (`trainer.Trainer`)."""
