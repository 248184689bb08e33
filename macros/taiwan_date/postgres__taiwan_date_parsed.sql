{#-
    The shared parse, as one scalar subquery returning column `output` ('parsed_date' or
    'reason') of one row. Never raises for any text: every regex is anchored and captures
    only ASCII digits (so the casts to int cannot fail), and make_date runs only on a
    year, month and day already checked against the calendar.

    1. value, earliest and latest are evaluated once, in a CTE with no FROM, so no name
       of this subquery can capture a column the caller meant. Every CTE is MATERIALIZED:
       inlined, PostgreSQL would substitute each expression into every use downstream
       and run the regexes dozens of times a row (18x slower, measured).
    2. NFKC, as the twin does (full-width digits, ／－．：, U+3000 and other compatibility
       forms to ASCII; translate() cannot express NFKC), then strip the characters Python's
       str.isspace() calls white space. normalize() needs a UTF8 database.
    3. The twin's five regexes, character for character (PATTERNS in loaders/taiwan_date.py;
       a test checks it). They are disjoint; a 4-digit year is Gregorian, a 1-3 digit year
       is ROC (+ 1911, year 0 does not exist). The Chinese form allows spaces between its
       parts, never inside a number: `[ ]` after NFKC, so U+3000 and the no-break space
       count, a tab or a line break between the parts does not.
-#}
{% macro postgres__taiwan_date_parsed(value, earliest, latest, output) -%}
{%- set selected = {
    'parsed_date': 'case when reason is null then calendar_date end',
    'reason': 'reason',
    'outcome': "coalesce(case when reason is null then calendar_date::text end, '!' || reason)",
}[output] -%}
(
    with td_input as materialized (
        select
            btrim(
                normalize(cast({{ value }} as text), nfkc),
                E'\t\n\x0b\f\r\x1c\x1d\x1e\x1f \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000'
            ) as td_text,
            {{ taiwan_date_bound_sql(earliest) }} as td_earliest,
            {{ taiwan_date_bound_sql(latest) }} as td_latest
    ),

    td_forms as materialized (
        select
            td_text,
            td_earliest,
            td_latest,
            regexp_match(
                td_text, '^([0-9]{4})([0-9]{2})([0-9]{2})(?:\.0+)?$'
            ) as greg_compact,
            regexp_match(
                td_text, '^([0-9]{1,3})([0-9]{2})([0-9]{2})(?:\.0+)?$'
            ) as roc_compact,
            regexp_match(
                td_text,
                '^([0-9]{4})([/.-])([0-9]{1,2})\2([0-9]{1,2})(?:[ T][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?)?$'
            ) as greg_separated,
            regexp_match(
                td_text, '^([0-9]{1,3})([/.-])([0-9]{1,2})\2([0-9]{1,2})$'
            ) as roc_separated,
            regexp_match(
                td_text,
                '^(?:民國[ ]*)?([0-9]{1,3})[ ]*年[ ]*([0-9]{1,2})[ ]*月[ ]*([0-9]{1,2})[ ]*日$'
            ) as chinese
        from td_input
    ),

    td_parts as materialized (
        select
            td_text,
            td_earliest,
            td_latest,
            coalesce(
                greg_compact[1], roc_compact[1], greg_separated[1], roc_separated[1], chinese[1]
            ) as year_text,
            cast(coalesce(
                greg_compact[2], roc_compact[2], greg_separated[3], roc_separated[3], chinese[2]
            ) as integer) as month_number,
            cast(coalesce(
                greg_compact[3], roc_compact[3], greg_separated[4], roc_separated[4], chinese[3]
            ) as integer) as day_number
        from td_forms
    ),

    td_years as materialized (
        select
            td_text,
            td_earliest,
            td_latest,
            year_text,
            month_number,
            day_number,
            case
                when length(year_text) = 4 then cast(year_text as integer)
                when cast(year_text as integer) = 0 then 0
                else cast(year_text as integer) + 1911
            end as year_number
        from td_parts
    ),

    td_checked as materialized (
        select
            td_text,
            td_earliest,
            td_latest,
            year_text,
            year_number,
            month_number,
            day_number,
            year_number >= 1
            and month_number between 1 and 12
            and day_number between 1 and case
                when month_number in (4, 6, 9, 11) then 30
                when month_number != 2 then 31
                when year_number % 4 = 0 and (year_number % 100 != 0 or year_number % 400 = 0)
                    then 29
                else 28
            end as is_calendar_date
        from td_years
    ),

    td_dated as materialized (
        select
            td_text,
            td_earliest,
            td_latest,
            year_text,
            is_calendar_date,
            case
                when is_calendar_date then make_date(year_number, month_number, day_number)
            end as calendar_date
        from td_checked
    ),

    td_judged as materialized (
        select
            calendar_date,
            case
                when td_text is null or td_text = '' then 'empty'
                when year_text is null then 'unparseable'
                when not is_calendar_date then 'not_calendar_date'
                when calendar_date < td_earliest or calendar_date > td_latest then 'out_of_range'
            end as reason
        from td_dated
    )

    select {{ selected }}
    from td_judged
)
{%- endmacro %}
