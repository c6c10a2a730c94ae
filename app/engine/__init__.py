"""The local training and inference engine: the only importer of torch, transformers, peft and safetensors."""
