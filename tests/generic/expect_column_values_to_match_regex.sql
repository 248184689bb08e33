{#- Expectation: every non-NULL value of `column_name` matches the POSIX regular expression
    `regex` (whole-value anchors are the caller's). Returns the failing rows. -#}
{% test expect_column_values_to_match_regex(model, column_name, regex) %}

    select *
    from {{ model }}
    where {{ column_name }} is not null and {{ column_name }}::text !~ '{{ regex }}'

{% endtest %}
