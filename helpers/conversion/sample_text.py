"""The text every logits check runs both copies of a model on: WikiText-style English prose.

It ships with the package, so every caller (the conversion command the notebooks run, the tests) has it without a
work directory. Its ~700 tokens (Qwen3's tokenizer 690, SmolLM2's 701; at least `logits.MIN_TOKENS`) give the
check's criteria hundreds of positions to rest on.
"""

SAMPLE_TEXT = """\
 = Model compression =
 Model compression is the practice of making a trained neural network smaller or faster while keeping as much of \
its accuracy as possible. Large language models are expensive to serve: every generated token requires reading all \
of the weights from memory, so a model with eight billion parameters needs sixteen gigabytes of memory bandwidth per \
token in half precision. Compression reduces this cost in three main ways. Quantization stores each weight in fewer \
bits. Pruning removes weights, neurons, attention heads or whole layers. Distillation trains a smaller model, the \
student, to imitate a larger one, the teacher.
 = = Pruning = =
 Early work on pruning, in the late 1980s, removed individual weights whose loss of accuracy was estimated to be \
small. Such unstructured pruning produces sparse matrices, which save memory but rarely run faster on ordinary \
hardware. Structured pruning instead removes complete units, so that the pruned model is simply a smaller dense \
model. Depth pruning drops entire transformer layers, usually those whose output is most similar to their input. \
Width pruning keeps every layer but makes each of them narrower, by removing the least important channels of the \
hidden state, neurons of the feed-forward network, or attention heads. The importance of each unit is measured on a \
small calibration set, for example by the average magnitude of its activations.
 = = Distillation = =
 A pruned model loses part of what it has learned, and the loss grows with the fraction of parameters removed. \
Knowledge distillation recovers much of it. The teacher and the student read the same text, and the student is \
trained to match the teacher's probability distribution over the next token rather than only the single token that \
actually follows. Because the teacher assigns some probability to every plausible continuation, its predictions carry \
more information per example than the original labels, and the student learns from far fewer tokens than were needed \
to train the teacher. In 2024, researchers at NVIDIA reported that pruning followed by distillation produced models \
of four and eight billion parameters that matched or exceeded models of the same size trained from scratch, while \
using up to forty times fewer training tokens.
 = = Evaluation = =
 A compressed model is usually compared with its teacher on three kinds of measurement. Perplexity on held-out text \
shows how well it still predicts language. Benchmarks such as MMLU, a collection of multiple-choice questions on \
fifty-seven subjects ranging from elementary mathematics to law, test knowledge and reasoning. Finally, the time \
taken to process a prompt and to generate each new token shows whether the smaller model is actually faster. A \
model with fewer layers generates tokens sooner, because the layers must run one after another, while a narrower \
model saves more memory for the same number of parameters.
 = = History = =
 The idea of training a small network to reproduce a large one dates back to 2006, when Cristian Bucilă, Rich \
Caruana and Alexandru Niculescu-Mizil compressed large ensembles of classifiers into single networks. Geoffrey \
Hinton, Oriol Vinyals and Jeff Dean gave the method its name in 2015 and introduced a temperature that softens the \
teacher's distribution. Since then distillation has been applied to speech recognition, machine translation and \
image classification, and it has become a standard step in the release of small language models, which are often \
distilled from larger members of the same family before they are published.
"""
