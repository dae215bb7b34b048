"""UniVid components: MLLM (LLM + ViT + VAE encoders), connector, Wan 2.2 DiT with TMA, sampler."""
