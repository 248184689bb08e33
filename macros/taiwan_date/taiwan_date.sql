{#-
    Taiwan (ROC, 民國) and Gregorian date text to a date, and why a value is not one.
    The spec is docs/taiwan-dates.md; the Python twin, loaders/taiwan_date.py, is the reference
    where the spec is silent. seeds/taiwan_date_vectors.csv drives the tests of both
    (tests/taiwan_date_vectors.sql, loaders/tests/test_taiwan_date.py). Arguments and
    examples: macros/_macros.yml.

    taiwan_date and taiwan_date_reason render the same parse (postgres__taiwan_date_parsed)
    and only pick a different column of its result, so they cannot disagree: the date is
    not NULL exactly when the reason is NULL.
-#}
{% macro taiwan_date(value, earliest=none, latest=none) -%}
    {#- sqlfluff's jinja templater has no `adapter`: it lints the Postgres SQL -#}
    {%- if adapter is defined -%}
        {{ return(adapter.dispatch('taiwan_date', 'luckygas')(value, earliest, latest)) }}
    {%- else -%}
        {{ return(postgres__taiwan_date(value, earliest, latest)) }}
    {%- endif -%}
{%- endmacro %}
