"""tfgan_app: GANs the Keras way, on TF-GAN's losses and evaluation."""

from setuptools import find_packages, setup

setup(
    name="tfgan_app",
    version="0.1.0",
    description="Train, evaluate, tune and serve GANs with Keras 3 model.fit() and TF-GAN losses",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["tfgan_app", "tfgan_app.*"]),
    install_requires=[
        "tensorflow==2.21.*",
        "keras>=3.10,<4",
        "tensorflow-gan==2.1.0",
        "tensorflow-probability>=0.25",
        "tf-keras==2.21.*",  # needed by tensorflow-probability's import on TF 2.21
        "tensorflow-datasets>=4.9,<4.10",
        "keras-tuner==1.4.8",
        "tensorboard>=2.21",  # keras-tuner imports it; TF 2.21 no longer installs it
        "scikit-learn>=1.3",
        "scikit-image>=0.22",  # its sample photos: the offline "photos" (issue #18)
        "scipy>=1.11",
        "matplotlib>=3.8",
        "pillow>=10",
        "numpy>=1.26",
    ],
    extras_require={
        "test": ["pytest>=8", "nbclient>=0.10", "nbformat>=5.10", "ipykernel>=6"],
    },
    entry_points={"console_scripts": ["tfgan-app=tfgan_app.cli:main"]},
)
