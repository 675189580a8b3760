"""Kalman-filter emission inversion (DESIGN.md layer 7): ln(emission scaling factors) per
region x sector x pollutant from station observations, cycled daily.

- :mod:`.kalman`: the linear-Gaussian update (filterpy's KalmanFilter behind our interface,
  with the batch analytical posterior as a check), prior covariance, the daily prior cycling,
  2-pass outlier rejection, averaging kernel and DOFS, the bias monitor, a cost preview;
- :mod:`.jacobian`: the observation vector and the Jacobian from a tagged prior run;
- :mod:`.invert`: the ``aqforecast invert`` stage.
"""
