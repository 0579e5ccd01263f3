// J groups with no parameter in common: theta[j] ~ normal(0, 1), three observations each.
data {
  int<lower=1> J;
  int<lower=1> N;
  array[N] int<lower=1, upper=J> group;
  vector[N] y;
}
parameters {
  vector[J] theta;
}
model {
  theta ~ std_normal();
  y ~ normal(theta[group], 1);
}
