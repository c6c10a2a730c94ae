nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__)"
python3 .gpu_carry/make_random.py .gpu_carry/smol /tmp/smol-random 2>&1 | tail -1
python3 .gpu_carry/smoke.py 2>&1 | grep -v Warning | tail -5
python3 bench/train_throughput.py --base-dir /tmp/smol-random --examples 512 --data-dir /tmp/tbd 2>&1 | grep -v -i warn | tail -8
python3 bench/train_throughput.py --base-dir /tmp/smol-random --examples 2048 --batch-size 64 --data-dir /tmp/tbd 2>&1 | grep -v -i warn | tail -4
