"""The trainable PAN reference world model (encoder h, latent backbone f, diffusion decoder g).

panbench reaches it only through the ``pan-ref``
adapter's lazy import.
"""
