// No initial value has a finite log density: every fit fails to initialize.
parameters {
  real<lower=0> sigma;
}
model {
  target += log(-sigma);
}
