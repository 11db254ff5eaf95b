"""English dates as patients read them in SecondRead ("23 April 1961", not Django's US "Apr. 23,
1961"). Other languages use Django's own formats ("23 de abril de 1961")."""

DATE_FORMAT = "j F Y"
DATETIME_FORMAT = "j F Y H:i"
