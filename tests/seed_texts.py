"""Seed code shared by several tests, verbatim (seed 002 §6: the hybrid ANN-SNN model)."""

SEED_002_HYBRID = """
import torch
import torch.nn as nn
import snntorch as snn
from talon.bridge.snntorch import export_to_ir
class HybridSNN(nn.Module):
    \"\"\"Conv feature extractor → spiking classifier.\"\"\"
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 14 * 14, 64)
        self.lif = snn.Leaky(beta=0.9)
        self.fc2 = nn.Linear(64, 10)
    def forward(self, x, mem=None):
        if mem is None:
            mem = self.lif.init_leaky()
        x = self.pool(self.relu(self.conv1(x)))
        x = self.fc1(self.flatten(x))
        spk, mem = self.lif(x, mem)
        return self.fc2(spk), mem
hybrid = HybridSNN()
hybrid_graph = export_to_ir(hybrid, torch.randn(1, 1, 28, 28))
"""
