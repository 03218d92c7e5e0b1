"""The trainable PAN reference world model (encoder h, latent backbone f, diffusion decoder g).

Empty until the reference-model issue lands; panbench reaches it only through the ``pan-ref``
adapter's lazy import.
"""
