"""The arena: a generator trained to fool a frozen detector as well as its discriminator, and how long
the detector lasts. The adversarial GAN step (model) and the time to evasion read from scored epochs (evasion).

A new arena measure or loop goes here. May import: `gan_lab.stress`, `gan_lab.gan`, `gan_lab.metrics`,
`detector`.
"""
