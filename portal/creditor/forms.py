from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, InputRequired, Length


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


class ApiKeyForm(FlaskForm):
    label = StringField("Label", validators=[Length(max=100)])


class ActionForm(FlaskForm):
    """A button that changes state: CSRF token only."""


class PostponeForm(FlaskForm):
    """Postpone a formal notice awaiting approval to a later day."""
    until = DateField("Until", validators=[InputRequired()])
