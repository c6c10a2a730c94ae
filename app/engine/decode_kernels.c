/* The small per-token steps of the CPU decoder (app/engine/cpu_decoder.py), fused into three C calls per layer half.

Why: a decoded token of a 135M Llama runs ~30 tiny torch ops per layer beside its 4 matmuls; each op costs a few
microseconds of dispatch and allocation, ~5 ms a token in all, as much as half the matmuls. Here each stretch
between two matmuls is one call: residual add + RMSNorm, rotary embedding + KV-cache write + attention, SwiGLU.
The arithmetic follows the torch ops it replaces (float32, rounded to bf16 the same way), except the order of
long sums, so logits agree to float rounding. Built and loaded by native.py; no Python or torch headers needed.

Tensors arrive as raw pointers: float32 residual stream and caches; matmul inputs and outputs are bf16 or float32
(`*_bf16` flags), as the weight format of each linear takes and gives them. */

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float bf16_to_float(uint16_t value) {
    uint32_t bits = (uint32_t)value << 16;
    float out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

static inline uint16_t float_to_bf16(float value) { /* round to nearest even, as torch's conversion */
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return 0x7fc0; /* NaN */
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

static inline float load(const void *data, int is_bf16, int64_t index) {
    return is_bf16 ? bf16_to_float(((const uint16_t *)data)[index]) : ((const float *)data)[index];
}

static inline void store(void *data, int is_bf16, int64_t index, float value) {
    if (is_bf16) ((uint16_t *)data)[index] = float_to_bf16(value);
    else ((float *)data)[index] = value;
}

/* x += delta (when given), then out = (x * rsqrt(mean(x^2) + eps)) * weight. */
void tb_residual_norm(float *x, const void *delta, int delta_bf16, const float *weight, int64_t n, float eps,
                      void *out, int out_bf16) {
    if (delta) {
        for (int64_t i = 0; i < n; i++) x[i] = x[i] + load(delta, delta_bf16, i);
    }
    float squares = 0.0f;
#pragma omp simd reduction(+ : squares)
    for (int64_t i = 0; i < n; i++) squares += x[i] * x[i];
    const float scale = 1.0f / sqrtf(squares / (float)n + eps);
    for (int64_t i = 0; i < n; i++) store(out, out_bf16, i, (x[i] * scale) * weight[i]);
}

/* One token's attention for one layer.
   qkv: [heads + 2 * kv_heads, dim] from the fused projection (query scale already in its weights);
   cos, sin: the rotary tables' row for this position; keys, values: this layer's cache, [kv_heads, capacity, dim],
   filled before `position`, which this call writes; scratch: float32, at least heads * (position + 1);
   out: [heads, dim], query heads grouped by their shared key/value head as in the model. */
void tb_attend(const void *qkv, int qkv_bf16, const float *cos, const float *sin, float *keys, float *values,
               int64_t capacity, int64_t position, int64_t heads, int64_t kv_heads, int64_t dim, float *scratch,
               void *out, int out_bf16) {
    const int64_t half = dim / 2, length = position + 1, group = heads / kv_heads;
    float query[heads * dim];
    for (int64_t h = 0; h < heads + kv_heads; h++) { /* rotary: x * cos + rotate_half(x) * sin, per product */
        float *target = h < heads ? query + h * dim : keys + ((h - heads) * capacity + position) * dim;
        float source[dim];
        for (int64_t i = 0; i < dim; i++) source[i] = load(qkv, qkv_bf16, h * dim + i);
        for (int64_t i = 0; i < dim; i++) {
            const float rotated = i < half ? source[i + half] * -sin[i] : source[i - half] * sin[i];
            target[i] = source[i] * cos[i] + rotated;
        }
    }
    for (int64_t h = 0; h < kv_heads; h++) {
        float *row = values + (h * capacity + position) * dim;
        for (int64_t i = 0; i < dim; i++) row[i] = load(qkv, qkv_bf16, (heads + kv_heads + h) * dim + i);
    }
    for (int64_t h = 0; h < heads; h++) {
        const float *q = query + h * dim;
        const float *k = keys + (h / group) * capacity * dim;
        const float *v = values + (h / group) * capacity * dim;
        float *scores = scratch + h * length;
        float best = -INFINITY;
        for (int64_t t = 0; t < length; t++) {
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int64_t i = 0; i < dim; i++) dot += q[i] * k[t * dim + i];
            scores[t] = dot;
            best = dot > best ? dot : best;
        }
        float total = 0.0f;
        for (int64_t t = 0; t < length; t++) {
            scores[t] = expf(scores[t] - best);
            total += scores[t];
        }
        float mixed[dim];
        for (int64_t i = 0; i < dim; i++) mixed[i] = 0.0f;
        for (int64_t t = 0; t < length; t++) {
            const float weight = scores[t] / total;
            for (int64_t i = 0; i < dim; i++) mixed[i] += weight * v[t * dim + i];
        }
        for (int64_t i = 0; i < dim; i++) store(out, out_bf16, h * dim + i, mixed[i]);
    }
}

/* out = silu(gate) * up, gate_up = [gate | up], each `width` wide; SiLU and the product in float32. */
void tb_swiglu(const void *gate_up, int gate_up_bf16, int64_t width, void *out, int out_bf16) {
    for (int64_t i = 0; i < width; i++) {
        const float gate = load(gate_up, gate_up_bf16, i);
        const float up = load(gate_up, gate_up_bf16, width + i);
        store(out, out_bf16, i, gate / (1.0f + expf(-gate)) * up);
    }
}

/* The batched decode step (batch_decoder.py): the same three stretches for `rows` conversations at once, each row
   through the single-row function above, so a row's arithmetic is exactly what it would be decoded alone. */

static inline const void *row_at(const void *data, int is_bf16, int64_t index) {
    return (const char *)data + index * (is_bf16 ? 2 : 4);
}

/* x, delta, out: [rows, n]. */
void tb_residual_norm_rows(float *x, const void *delta, int delta_bf16, const float *weight, int64_t n, float eps,
                           void *out, int out_bf16, int64_t rows) {
    for (int64_t r = 0; r < rows; r++) {
        tb_residual_norm(x + r * n, delta ? row_at(delta, delta_bf16, r * n) : 0, delta_bf16, weight, n, eps,
                         (void *)row_at(out, out_bf16, r * n), out_bf16);
    }
}

/* qkv: [rows, heads + 2 * kv_heads, dim]; row r attends over its own cache: keys[r], values[r] are the base
   addresses of its [layers, kv_heads, capacities[r], dim] caches, `layer` picks the layer, positions[r] is where its
   token goes; cos, sin: the rotary tables ([positions, dim]); scratch: float32, heads * (max position + 1);
   out: [rows, heads, dim]. */
void tb_attend_rows(const void *qkv, int qkv_bf16, const float *cos, const float *sin, const int64_t *keys,
                    const int64_t *values, const int64_t *capacities, const int64_t *positions, int64_t layer,
                    int64_t rows, int64_t heads, int64_t kv_heads, int64_t dim, float *scratch, void *out,
                    int out_bf16) {
    const int64_t width = (heads + 2 * kv_heads) * dim;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t layer_floats = kv_heads * capacities[r] * dim;
        float *layer_keys = (float *)(intptr_t)keys[r] + layer * layer_floats;
        float *layer_values = (float *)(intptr_t)values[r] + layer * layer_floats;
        tb_attend(row_at(qkv, qkv_bf16, r * width), qkv_bf16, cos + positions[r] * dim, sin + positions[r] * dim,
                  layer_keys, layer_values, capacities[r], positions[r], heads, kv_heads, dim, scratch,
                  (void *)row_at(out, out_bf16, r * heads * dim), out_bf16);
    }
}

/* gate_up: [rows, 2 * width]; out: [rows, width]. */
void tb_swiglu_rows(const void *gate_up, int gate_up_bf16, int64_t width, void *out, int out_bf16, int64_t rows) {
    for (int64_t r = 0; r < rows; r++) {
        tb_swiglu(row_at(gate_up, gate_up_bf16, r * 2 * width), gate_up_bf16, width,
                  (void *)row_at(out, out_bf16, r * width), out_bf16);
    }
}
