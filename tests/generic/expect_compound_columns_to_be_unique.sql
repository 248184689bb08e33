{#- Expectation: no two rows share the values of `column_list` (NULLs compare equal).
    Returns one row per repeated combination, with its count. dbt-expectations' test of
    the same name, written here because the dbt package hub is unreachable. -#}
{% test expect_compound_columns_to_be_unique(model, column_list) %}

    select
        {{ column_list | join(', ') }},
        count(*) as occurrences
    from {{ model }}
    group by {{ column_list | join(', ') }}
    having count(*) > 1

{% endtest %}
