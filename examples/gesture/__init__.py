"""Tri-modal example (NVGesture: RGB, optical flow, depth): dataset, flow maker, demo data."""
