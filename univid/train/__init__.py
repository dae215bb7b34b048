"""Training: the three stages (paper Sec. 3.2, Appendix A.3) through one trainer loop."""
